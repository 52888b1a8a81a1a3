package tokenizer_test

import (
	"fmt"

	"github.com/cpo-toolchain/cpo/pkg/tokenizer"
)

// Train a small byte-level BPE vocabulary, encode and decode.
func Example() {
	texts := []string{"the cat sat on the mat. the cat ate the rat.", "the mat is flat; the rat is fat."}
	tok, err := tokenizer.Train(texts, 300)
	if err != nil {
		panic(err)
	}
	ids := tok.Encode("the fat cat<|endoftext|>")
	text, _ := tok.Decode(ids)
	fmt.Println(tok.Kind(), tok.VocabSize(), ids[len(ids)-1] == tok.EOS())
	fmt.Printf("%q\n", text)
	// Training stops when no pair occurs twice, here before 300 ids.
	// Output:
	// bytelevel-bpe 270 true
	// "the fat cat<|endoftext|>"
}

// Load the SentencePiece model of the tests and compare the two treatments of special-token
// text.
func ExampleTokenizer_EncodeOrdinary() {
	tok, err := tokenizer.Load("../../testdata/tokenizer/sp/llama.model")
	if err != nil {
		panic(err)
	}
	fmt.Println(len(tok.Encode("</s>")), tok.Encode("</s>")[0] == tok.EOS())
	fmt.Println(len(tok.EncodeOrdinary("</s>")) > 1)
	// Output:
	// 1 true
	// true
}
