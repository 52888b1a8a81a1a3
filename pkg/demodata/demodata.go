// Package demodata makes the built-in default data set of the demo: instruction/response pairs
// in the Dolly JSONL format whose right answers are known (arithmetic, comparisons, spelling,
// counting, sorting, facts about a small made-up world, reading a passage), and a small text
// corpus about the same world for tokenizer training and the continuation task. Everything is a
// deterministic function of the seed, so the demo needs nothing downloaded.
package demodata

import (
	"fmt"
	"math/rand"
	"sort"
	"strconv"
	"strings"
)

// Row is one record in the Dolly-15k JSONL format.
type Row struct {
	Instruction string `json:"instruction"`
	Context     string `json:"context"`
	Response    string `json:"response"`
	Category    string `json:"category"`
}

// The made-up world: countries with capitals, rivers, colours and animals.
var (
	countries = []string{"Veloria", "Tamsk", "Orunde", "Pelagia", "Quorra", "Brisk", "Caldor", "Ennet", "Feyn", "Gorrim", "Hallow", "Istra"}
	capitals  = []string{"Marn", "Osk", "Lume", "Teshe", "Vantor", "Kell", "Dunmore", "Avik", "Sorrel", "Pike", "Wend", "Corva"}
	rivers    = []string{"Sable", "Ilen", "Moraw", "Tethe", "Quill", "Brann", "Cask", "Evers", "Fenn", "Grail", "Hollin", "Isk"}
	animals   = []string{"fox", "heron", "otter", "lynx", "crane", "badger", "wren", "marten", "stoat", "ibex", "vole", "kite"}
	colours   = []string{"red", "blue", "green", "amber", "grey", "white", "violet", "black"}
	names     = []string{"Ana", "Ben", "Cara", "Dov", "Eli", "Fay", "Gus", "Hana", "Ivo", "Jun", "Kai", "Lea"}
	words     = []string{"river", "stone", "lantern", "harbor", "meadow", "candle", "silver", "window", "garden", "thunder",
		"pebble", "summit", "orchard", "compass", "falcon", "kettle", "ribbon", "saddle", "timber", "violin"}
	numWords = []string{"zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
		"eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen", "twenty"}
)

// Categories lists the kinds of rows Generate makes.
var Categories = []string{"arithmetic", "comparison", "spelling", "counting", "sorting", "open_qa", "closed_qa"}

// Generate returns n rows, cycling through the categories in a seeded order.
func Generate(seed int64, n int) []Row {
	rng := rand.New(rand.NewSource(seed))
	rows := make([]Row, n)
	for i := range rows {
		rows[i] = one(rng, Categories[rng.Intn(len(Categories))])
	}
	return rows
}

func one(rng *rand.Rand, cat string) Row {
	r := Row{Category: cat}
	switch cat {
	case "arithmetic":
		a, b := rng.Intn(50), rng.Intn(50)
		if rng.Intn(2) == 0 {
			r.Instruction = pick(rng, "What is %d plus %d?", "Add %d and %d.", "Compute %d + %d.")
			r.Instruction = fmt.Sprintf(r.Instruction, a, b)
			r.Response = fmt.Sprintf("%d plus %d is %d.", a, b, a+b)
		} else {
			if a < b {
				a, b = b, a
			}
			r.Instruction = fmt.Sprintf(pick(rng, "What is %d minus %d?", "Subtract %d from %d.", "Compute %d - %d."), a, b)
			if strings.HasPrefix(r.Instruction, "Subtract") {
				r.Instruction = fmt.Sprintf("Subtract %d from %d.", b, a)
			}
			r.Response = fmt.Sprintf("%d minus %d is %d.", a, b, a-b)
		}
	case "comparison":
		a, b := rng.Intn(100), rng.Intn(100)
		for a == b {
			b = rng.Intn(100)
		}
		r.Instruction = fmt.Sprintf(pick(rng, "Which is larger, %d or %d?", "Which number is bigger: %d or %d?"), a, b)
		hi, lo := max(a, b), min(a, b)
		r.Response = fmt.Sprintf("%d is larger than %d.", hi, lo)
	case "spelling":
		w := words[rng.Intn(len(words))]
		r.Instruction = fmt.Sprintf(pick(rng, "Spell the word '%s' backwards.", "Write '%s' in reverse."), w)
		r.Response = fmt.Sprintf("The word '%s' backwards is '%s'.", w, reverse(w))
	case "counting":
		w := words[rng.Intn(len(words))]
		r.Instruction = fmt.Sprintf(pick(rng, "How many letters are in the word '%s'?", "Count the letters of '%s'."), w)
		r.Response = fmt.Sprintf("The word '%s' has %s letters.", w, numWords[len(w)])
	case "sorting":
		k := 3 + rng.Intn(3)
		xs := make([]int, k)
		for i := range xs {
			xs[i] = rng.Intn(100)
		}
		r.Instruction = "Sort these numbers from smallest to largest: " + joinInts(xs) + "."
		sort.Ints(xs)
		r.Response = "From smallest to largest: " + joinInts(xs) + "."
	case "open_qa":
		i := rng.Intn(len(countries))
		switch rng.Intn(3) {
		case 0:
			r.Instruction = fmt.Sprintf("What is the capital of %s?", countries[i])
			r.Response = fmt.Sprintf("The capital of %s is %s.", countries[i], capitals[i])
		case 1:
			r.Instruction = fmt.Sprintf("Which river flows through %s?", capitals[i])
			r.Response = fmt.Sprintf("The river %s flows through %s.", rivers[i], capitals[i])
		default:
			r.Instruction = fmt.Sprintf("What is the national animal of %s?", countries[i])
			r.Response = fmt.Sprintf("The national animal of %s is the %s.", countries[i], animals[i])
		}
	default: // closed_qa: answer from a passage given as context
		p := rng.Perm(len(names))[:3]
		c := rng.Perm(len(colours))[:3]
		var ctx []string
		for j := range p {
			ctx = append(ctx, fmt.Sprintf("%s owns the %s house.", names[p[j]], colours[c[j]]))
		}
		q := rng.Intn(3)
		r.Context = strings.Join(ctx, " ")
		if rng.Intn(2) == 0 {
			r.Instruction = fmt.Sprintf("Using the passage, who owns the %s house?", colours[c[q]])
		} else {
			r.Instruction = fmt.Sprintf("According to the passage, which house does %s own?", names[p[q]])
		}
		r.Response = fmt.Sprintf("%s owns the %s house.", names[p[q]], colours[c[q]])
	}
	return r
}

// Corpus returns n sentences of encyclopaedic prose about the made-up world, grouped into
// paragraphs of several sentences each (one paragraph per line), for tokenizer training and the
// continuation (Wikipedia-style) task.
func Corpus(seed int64, paragraphs int) []string {
	rng := rand.New(rand.NewSource(seed))
	out := make([]string, paragraphs)
	for p := range out {
		i := rng.Intn(len(countries))
		s := []string{
			fmt.Sprintf("%s is a small country whose capital is %s.", countries[i], capitals[i]),
			fmt.Sprintf("The river %s flows through %s and into the sea.", rivers[i], capitals[i]),
			fmt.Sprintf("The national animal of %s is the %s.", countries[i], animals[i]),
			fmt.Sprintf("In %s, houses are often painted %s.", capitals[i], colours[rng.Intn(len(colours))]),
			fmt.Sprintf("About %d thousand people live in %s.", 10+rng.Intn(900), capitals[i]),
			fmt.Sprintf("The people of %s are known for their %s and their %s.", countries[i], words[rng.Intn(len(words))]+"s", words[rng.Intn(len(words))]+"s"),
			fmt.Sprintf("Travellers reach %s from %s in %s days.", capitals[i], capitals[rng.Intn(len(capitals))], numWords[1+rng.Intn(9)]),
		}
		rng.Shuffle(len(s)-1, func(a, b int) { s[a+1], s[b+1] = s[b+1], s[a+1] })
		out[p] = strings.Join(s[:4+rng.Intn(4)], " ")
	}
	return out
}

func pick(rng *rand.Rand, opts ...string) string { return opts[rng.Intn(len(opts))] }

func reverse(s string) string {
	b := []byte(s)
	for i, j := 0, len(b)-1; i < j; i, j = i+1, j-1 {
		b[i], b[j] = b[j], b[i]
	}
	return string(b)
}

func joinInts(xs []int) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, ", ")
}
