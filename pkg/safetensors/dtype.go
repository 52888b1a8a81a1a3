package safetensors

import (
	"encoding/binary"
	"fmt"
	"math"
)

// DType is a safetensors element type as spelled in the header ("F32", "BF16", ...).
type DType string

// The element types of the safetensors specification. Only F64, F32, F16 and BF16 can be
// converted to float32 by this package; the others are recognised (so a header that uses
// them is well formed) but reading them as floats is an error.
const (
	F64    DType = "F64"
	F32    DType = "F32"
	F16    DType = "F16"
	BF16   DType = "BF16"
	I64    DType = "I64"
	U64    DType = "U64"
	I32    DType = "I32"
	U32    DType = "U32"
	I16    DType = "I16"
	U16    DType = "U16"
	I8     DType = "I8"
	U8     DType = "U8"
	Bool   DType = "BOOL"
	F8E4M3 DType = "F8_E4M3"
	F8E5M2 DType = "F8_E5M2"
)

var dtypeSizes = map[DType]int64{
	F64: 8, I64: 8, U64: 8,
	F32: 4, I32: 4, U32: 4,
	F16: 2, BF16: 2, I16: 2, U16: 2,
	I8: 1, U8: 1, Bool: 1, F8E4M3: 1, F8E5M2: 1,
}

// Size returns the size of one element in bytes, or 0 for an unknown type.
func (d DType) Size() int64 { return dtypeSizes[d] }

// Known reports whether d is a dtype of the safetensors specification.
func (d DType) Known() bool { return dtypeSizes[d] != 0 }

// Float reports whether tensors of this dtype can be read as float32 (F64, F32, F16, BF16).
func (d DType) Float() bool { return d == F64 || d == F32 || d == F16 || d == BF16 }

// decode converts len(dst) little-endian elements of type d from src into dst.
// len(src) must be len(dst)*d.Size().
func decode(d DType, dst []float32, src []byte) error {
	switch d {
	case F32:
		for i := range dst {
			dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(src[4*i:]))
		}
	case F16:
		for i := range dst {
			dst[i] = HalfToFloat32(binary.LittleEndian.Uint16(src[2*i:]))
		}
	case BF16:
		for i := range dst {
			dst[i] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(src[2*i:])) << 16)
		}
	case F64:
		for i := range dst {
			dst[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(src[8*i:])))
		}
	default:
		return fmt.Errorf("dtype %s cannot be read as float32 (supported: F32, F16, BF16, F64)", d)
	}
	return nil
}

// DecodeFloat32 converts len(dst) little-endian elements of type d (F32, F16, BF16 or F64)
// from src into dst; len(src) must be len(dst)*d.Size(). For readers of other containers
// (PyTorch archives) that hold the same element encodings.
func DecodeFloat32(d DType, dst []float32, src []byte) error {
	if int64(len(src)) != int64(len(dst))*d.Size() {
		return fmt.Errorf("decoding %s: %d bytes for %d elements", d, len(src), len(dst))
	}
	return decode(d, dst, src)
}

// encode writes src as little-endian elements of type d (F32 or BF16) into dst,
// len(dst) = len(src)*d.Size().
func encode(d DType, dst []byte, src []float32) error {
	switch d {
	case F32:
		for i, v := range src {
			binary.LittleEndian.PutUint32(dst[4*i:], math.Float32bits(v))
		}
	case BF16:
		for i, v := range src {
			binary.LittleEndian.PutUint16(dst[2*i:], Float32ToBF16(v))
		}
	default:
		return fmt.Errorf("cannot write dtype %s (supported: F32, BF16)", d)
	}
	return nil
}

// HalfToFloat32 converts an IEEE 754 binary16 value (as its bit pattern) to float32,
// exactly, including subnormals, infinities and NaN.
func HalfToFloat32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f: // inf or NaN
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	case exp != 0: // normal
		return math.Float32frombits(sign | (exp+127-15)<<23 | mant<<13)
	case mant == 0:
		return math.Float32frombits(sign)
	default: // subnormal: mant * 2^-24
		v := float32(mant) * (1.0 / (1 << 24))
		if sign != 0 {
			v = -v
		}
		return v
	}
}

// Float32ToBF16 rounds a float32 to bfloat16 (round to nearest, ties to even) and returns
// its bit pattern. NaN stays NaN (quiet, sign kept); values past the bf16 range round to ±Inf.
func Float32ToBF16(f float32) uint16 {
	u := math.Float32bits(f)
	if u&0x7fffffff > 0x7f800000 { // NaN
		return uint16(u>>16) | 0x0040
	}
	u += 0x7fff + (u>>16)&1
	return uint16(u >> 16)
}

// BF16ToFloat32 converts a bfloat16 bit pattern to float32 (exact).
func BF16ToFloat32(b uint16) float32 { return math.Float32frombits(uint32(b) << 16) }
