package tokenizer

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// spModel is the part of SentencePiece's ModelProto that encoding needs.
type spModel struct {
	pieces          []spPiece
	modelType       int64 // 1 unigram, 2 BPE, 3 word, 4 char
	byteFallback    bool
	treatWSAsSuffix bool
	unkID           int64
	bosID, eosID    int64
	padID           int64
	charsmap        []byte
	normName        string
	addDummyPrefix  bool
	removeExtraWS   bool
	escapeWS        bool
}

type spPiece struct {
	piece string
	score float32
	typ   uint8
}

// readVarint decodes a protobuf varint; k is 0 on a malformed or truncated one.
func readVarint(b []byte) (v uint64, k int) {
	for shift := uint(0); k < len(b) && k < 10; shift += 7 {
		c := b[k]
		k++
		v |= uint64(c&0x7F) << shift
		if c < 0x80 {
			return v, k
		}
	}
	return 0, 0
}

// protoField is one decoded field: num, wire type, and the varint or the bytes.
type protoField struct {
	num  int
	wire int
	v    uint64
	b    []byte
}

// walkProto calls fn for each field of a protobuf message.
func walkProto(msg []byte, fn func(f protoField) error) error {
	for off := 0; off < len(msg); {
		key, k := readVarint(msg[off:])
		if k == 0 {
			return fmt.Errorf("malformed field key at byte %d", off)
		}
		off += k
		f := protoField{num: int(key >> 3), wire: int(key & 7)}
		switch f.wire {
		case 0:
			f.v, k = readVarint(msg[off:])
			if k == 0 {
				return fmt.Errorf("field %d: malformed varint at byte %d", f.num, off)
			}
			off += k
		case 1:
			if off+8 > len(msg) {
				return fmt.Errorf("field %d: truncated fixed64 at byte %d", f.num, off)
			}
			f.v = binary.LittleEndian.Uint64(msg[off:])
			off += 8
		case 2:
			n, k := readVarint(msg[off:])
			if k == 0 || n > uint64(len(msg)-off-k) {
				return fmt.Errorf("field %d: bad length at byte %d", f.num, off)
			}
			off += k
			f.b = msg[off : off+int(n)]
			off += int(n)
		case 5:
			if off+4 > len(msg) {
				return fmt.Errorf("field %d: truncated fixed32 at byte %d", f.num, off)
			}
			f.v = uint64(binary.LittleEndian.Uint32(msg[off:]))
			off += 4
		default:
			return fmt.Errorf("field %d: unsupported wire type %d at byte %d", f.num, f.wire, off)
		}
		if f.num == 0 {
			return errors.New("field number 0")
		}
		if err := fn(f); err != nil {
			return err
		}
	}
	return nil
}

func parseModelProto(data []byte) (*spModel, error) {
	m := &spModel{modelType: 1, unkID: 0, bosID: 1, eosID: 2, padID: -1,
		addDummyPrefix: true, removeExtraWS: true, escapeWS: true}
	err := walkProto(data, func(f protoField) error {
		switch f.num {
		case 1: // SentencePiece
			if f.wire != 2 {
				return fmt.Errorf("piece %d: wire type %d", len(m.pieces), f.wire)
			}
			p := spPiece{typ: typeNormal}
			err := walkProto(f.b, func(g protoField) error {
				switch g.num {
				case 1:
					p.piece = string(g.b)
				case 2:
					p.score = math.Float32frombits(uint32(g.v))
				case 3:
					p.typ = uint8(g.v)
				}
				return nil
			})
			if err != nil {
				return fmt.Errorf("piece %d: %w", len(m.pieces), err)
			}
			m.pieces = append(m.pieces, p)
		case 2: // TrainerSpec
			return walkProto(f.b, func(g protoField) error {
				switch g.num {
				case 3:
					m.modelType = int64(g.v)
				case 24:
					m.treatWSAsSuffix = g.v != 0
				case 35:
					m.byteFallback = g.v != 0
				case 40:
					m.unkID = int64(int32(g.v))
				case 41:
					m.bosID = int64(int32(g.v))
				case 42:
					m.eosID = int64(int32(g.v))
				case 43:
					m.padID = int64(int32(g.v))
				}
				return nil
			})
		case 3: // NormalizerSpec
			return walkProto(f.b, func(g protoField) error {
				switch g.num {
				case 1:
					m.normName = string(g.b)
				case 2:
					m.charsmap = g.b
				case 3:
					m.addDummyPrefix = g.v != 0
				case 4:
					m.removeExtraWS = g.v != 0
				case 5:
					m.escapeWS = g.v != 0
				}
				return nil
			})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("not a SentencePiece model: %w", err)
	}
	if len(m.pieces) == 0 {
		return nil, errors.New("not a SentencePiece model: no pieces")
	}
	return m, nil
}
