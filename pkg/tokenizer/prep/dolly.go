package prep

import "strings"

// The fixed parts of DefaultDollyTemplate, for ParseDollyPrompt.
const (
	dollyHead  = "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n### Instruction:\n"
	dollyInput = "\n\nInput:\n"
	dollyTail  = "\n\n### Response:\n"
)

// ParseDollyPrompt inverts DefaultDollyTemplate: given a prompt it rendered, it returns the
// row's instruction and context (empty when the row had none), and ok = false for any other
// text (another template, or a prompt cut by --max-prompt-tokens). When the instruction itself
// contains "\n\nInput:\n", the first occurrence is taken as the start of the context; the
// result then still renders back to the same prompt.
func ParseDollyPrompt(prompt string) (instruction, context string, ok bool) {
	body, ok := strings.CutPrefix(prompt, dollyHead)
	if !ok {
		return "", "", false
	}
	if body, ok = strings.CutSuffix(body, dollyTail); !ok {
		return "", "", false
	}
	if ins, ctx, found := strings.Cut(body, dollyInput); found && ctx != "" {
		return ins, ctx, true
	}
	return body, "", true
}

// DollyQuery is the query a judge is shown for a prompt (the paper's "Query: {}"): for a
// prompt in the Dolly training format (ParseDollyPrompt), the instruction, followed by a blank
// line and the context when there is one; any other prompt as it is.
func DollyQuery(prompt string) string {
	ins, ctx, ok := ParseDollyPrompt(prompt)
	switch {
	case !ok:
		return prompt
	case ctx == "":
		return ins
	}
	return ins + "\n\n" + ctx
}
