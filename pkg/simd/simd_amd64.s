//go:build amd64 && !purego

#include "textflag.h"

// Constants, one float32 each, broadcast into Z16-Z31 by the kernels.
DATA consts<>+0(SB)/4, $0xc2d00000  // -104: below it e^x rounds to 0
DATA consts<>+4(SB)/4, $0x42b18000  // 88.75: above 88.7228 e^x overflows to +Inf
DATA consts<>+8(SB)/4, $0x3fb8aa3b  // log2(e)
DATA consts<>+12(SB)/4, $0xbf318000 // -ln2 high part (-0.693359375, exact in 9 bits)
DATA consts<>+16(SB)/4, $0x395e8083 // -ln2 low part (2.12194440e-4)
DATA consts<>+20(SB)/4, $0x39506967 // p0 1.9875691500e-4 (Cephes expf)
DATA consts<>+24(SB)/4, $0x3ab743ce // p1 1.3981999507e-3
DATA consts<>+28(SB)/4, $0x3c088908 // p2 8.3334519073e-3
DATA consts<>+32(SB)/4, $0x3d2aa9c1 // p3 4.1665795894e-2
DATA consts<>+36(SB)/4, $0x3e2aaaaa // p4 1.6666665459e-1
DATA consts<>+40(SB)/4, $0x3f000000 // p5 5.0000001201e-1
DATA consts<>+44(SB)/4, $0x3f800000 // 1
DATA consts<>+48(SB)/4, $0xff800000 // -Inf
DATA consts<>+52(SB)/4, $0xbfcc422a // -2k (k = sqrt(2/pi)), GELU
DATA consts<>+56(SB)/4, $0xbd922279 // -2k*0.044715
DATA consts<>+60(SB)/4, $0x3fcc422a // 2k
DATA consts<>+64(SB)/4, $0x3e5b33b6 // 2k*3*0.044715
DATA consts<>+68(SB)/4, $0xbf800000 // -1
GLOBL consts<>(SB), RODATA|NOPTR, $72

// LOADEXP broadcasts the constants of EXP into Z16-Z27.
#define LOADEXP \
	VBROADCASTSS consts<>+0(SB), Z16;  \
	VBROADCASTSS consts<>+8(SB), Z17;  \
	VBROADCASTSS consts<>+12(SB), Z18; \
	VBROADCASTSS consts<>+16(SB), Z19; \
	VBROADCASTSS consts<>+20(SB), Z20; \
	VBROADCASTSS consts<>+24(SB), Z21; \
	VBROADCASTSS consts<>+28(SB), Z22; \
	VBROADCASTSS consts<>+32(SB), Z23; \
	VBROADCASTSS consts<>+36(SB), Z24; \
	VBROADCASTSS consts<>+40(SB), Z25; \
	VBROADCASTSS consts<>+44(SB), Z26; \
	VBROADCASTSS consts<>+4(SB), Z27

// EXP replaces Z0 by e^Z0 in every lane, using Z1-Z3. x is clamped to [-104, 88.75]
// (NaN passes through: the data is the second source of VMAXPS/VMINPS), n = round(x*log2 e),
// r = x - n*ln2 in two steps, e^r = 1 + r + r^2*P(r), and e^x = e^r * 2^n by VSCALEFPS,
// which rounds once into the subnormals and overflows to +Inf.
#define EXP \
	VMAXPS       Z0, Z16, Z0;  \
	VMINPS       Z0, Z27, Z0;  \
	VMULPS       Z17, Z0, Z1;  \
	VRNDSCALEPS  $0, Z1, Z1;   \
	VFMADD231PS  Z18, Z1, Z0;  \
	VFMADD231PS  Z19, Z1, Z0;  \
	VMOVAPS      Z20, Z2;      \
	VFMADD213PS  Z21, Z0, Z2;  \
	VFMADD213PS  Z22, Z0, Z2;  \
	VFMADD213PS  Z23, Z0, Z2;  \
	VFMADD213PS  Z24, Z0, Z2;  \
	VFMADD213PS  Z25, Z0, Z2;  \
	VMULPS       Z0, Z0, Z3;   \
	VFMADD213PS  Z0, Z3, Z2;   \
	VADDPS       Z26, Z2, Z2;  \
	VSCALEFPS    Z1, Z2, Z0

// TAILMASK sets K1 to the low CX bits (0 < CX < 16), using AX.
#define TAILMASK \
	MOVL  $1, AX;  \
	SHLL  CX, AX;  \
	DECL  AX;      \
	KMOVW AX, K1

// func maxAVX512(n int, src *float32, out *[16]float32)
TEXT ·maxAVX512(SB), NOSPLIT, $0-24
	MOVQ n+0(FP), CX
	MOVQ src+8(FP), SI
	MOVQ out+16(FP), DI
	VBROADCASTSS consts<>+48(SB), Z4
	VMOVAPS Z4, Z5

maxloop:
	CMPQ CX, $32
	JLT  maxone
	VMAXPS (SI), Z4, Z4
	VMAXPS 64(SI), Z5, Z5
	ADDQ $128, SI
	SUBQ $32, CX
	JMP  maxloop

maxone:
	CMPQ CX, $16
	JLT  maxtail
	VMAXPS (SI), Z4, Z4
	ADDQ $64, SI
	SUBQ $16, CX

maxtail:
	TESTQ CX, CX
	JZ    maxdone
	TAILMASK
	VBROADCASTSS consts<>+48(SB), Z0
	VMOVUPS (SI), K1, Z0
	VMAXPS  Z0, Z5, Z5

maxdone:
	VMAXPS  Z5, Z4, Z4
	VMOVUPS Z4, (DI)
	VZEROUPPER
	RET

// func expShiftAVX512(n int, src, dst *float32, shift, alpha float32, acc *[16]float64)
TEXT ·expShiftAVX512(SB), NOSPLIT, $0-40
	MOVQ n+0(FP), CX
	MOVQ src+8(FP), SI
	MOVQ dst+16(FP), DI
	VBROADCASTSS shift+24(FP), Z10
	VBROADCASTSS alpha+28(FP), Z11
	MOVQ acc+32(FP), DX
	LOADEXP
	VXORPD Z8, Z8, Z8
	VXORPD Z9, Z9, Z9

exploop:
	CMPQ CX, $16
	JLT  exptail
	VMOVUPS (SI), Z0
	VSUBPS  Z10, Z0, Z0
	EXP
	VMULPS  Z11, Z0, Z0
	TESTQ   DI, DI
	JZ      expnostore
	VMOVUPS Z0, (DI)
	ADDQ    $64, DI

expnostore:
	TESTQ DX, DX
	JZ    expnosum
	VEXTRACTF32X8 $1, Z0, Y5
	VCVTPS2PD     Y0, Z4
	VCVTPS2PD     Y5, Z5
	VADDPD        Z4, Z8, Z8
	VADDPD        Z5, Z9, Z9

expnosum:
	ADDQ $64, SI
	SUBQ $16, CX
	JMP  exploop

exptail:
	TESTQ CX, CX
	JZ    expdone
	TAILMASK
	VMOVUPS.Z (SI), K1, Z0
	VSUBPS    Z10, Z0, Z0
	EXP
	VMULPS.Z  Z11, Z0, K1, Z0
	TESTQ     DI, DI
	JZ        exptailnostore
	VMOVUPS   Z0, K1, (DI)

exptailnostore:
	VEXTRACTF32X8 $1, Z0, Y5
	VCVTPS2PD     Y0, Z4
	VCVTPS2PD     Y5, Z5
	VADDPD        Z4, Z8, Z8
	VADDPD        Z5, Z9, Z9

expdone:
	TESTQ DX, DX
	JZ    expret
	VMOVUPD Z8, (DX)
	VMOVUPD Z9, 64(DX)

expret:
	VZEROUPPER
	RET

// GELUBODY: Z12 = x; Z0 = gelu(x) = x / (1 + e^(-2k(x + a x^3))), using Z1-Z3.
#define GELUBODY \
	VMULPS      Z12, Z12, Z0; \
	VFMADD213PS Z28, Z29, Z0; \
	VMULPS      Z12, Z0, Z0;  \
	EXP;                      \
	VADDPS      Z26, Z0, Z0;  \
	VDIVPS      Z0, Z12, Z0

// func geluAVX512(n int, src, dst *float32)
TEXT ·geluAVX512(SB), NOSPLIT, $0-24
	MOVQ n+0(FP), CX
	MOVQ src+8(FP), SI
	MOVQ dst+16(FP), DI
	LOADEXP
	VBROADCASTSS consts<>+52(SB), Z28
	VBROADCASTSS consts<>+56(SB), Z29

geluloop:
	CMPQ CX, $16
	JLT  gelutail
	VMOVUPS (SI), Z12
	GELUBODY
	VMOVUPS Z0, (DI)
	ADDQ    $64, SI
	ADDQ    $64, DI
	SUBQ    $16, CX
	JMP     geluloop

gelutail:
	TESTQ CX, CX
	JZ    geludone
	TAILMASK
	VMOVUPS.Z (SI), K1, Z12
	GELUBODY
	VMOVUPS   Z0, K1, (DI)

geludone:
	VZEROUPPER
	RET

// GELUBWDBODY: Z12 = x, Z13 = dout; Z0 = gelu'(x)*dout with s = 1/(1+e^(-2u)),
// gelu'(x) = s + x*s*(1-s)*(2k + 6ka x^2); uses Z1-Z3, Z14, Z15.
#define GELUBWDBODY \
	VMULPS      Z12, Z12, Z14; \
	VMOVAPS     Z14, Z0;       \
	VFMADD213PS Z28, Z29, Z0;  \
	VMULPS      Z12, Z0, Z0;   \
	EXP;                       \
	VADDPS      Z26, Z0, Z0;   \
	VDIVPS      Z0, Z26, Z0;   \
	VSUBPS      Z0, Z26, Z15;  \
	VMULPS      Z0, Z15, Z15;  \
	VFMADD213PS Z30, Z31, Z14; \
	VMULPS      Z12, Z14, Z14; \
	VFMADD213PS Z0, Z15, Z14;  \
	VMULPS      Z13, Z14, Z0

// func geluBwdAVX512(n int, inp, dout, dinp *float32)
TEXT ·geluBwdAVX512(SB), NOSPLIT, $0-32
	MOVQ n+0(FP), CX
	MOVQ inp+8(FP), SI
	MOVQ dout+16(FP), DX
	MOVQ dinp+24(FP), DI
	LOADEXP
	VBROADCASTSS consts<>+52(SB), Z28
	VBROADCASTSS consts<>+56(SB), Z29
	VBROADCASTSS consts<>+60(SB), Z30
	VBROADCASTSS consts<>+64(SB), Z31

gbloop:
	CMPQ CX, $16
	JLT  gbtail
	VMOVUPS (SI), Z12
	VMOVUPS (DX), Z13
	GELUBWDBODY
	VMOVUPS Z0, (DI)
	ADDQ    $64, SI
	ADDQ    $64, DX
	ADDQ    $64, DI
	SUBQ    $16, CX
	JMP     gbloop

gbtail:
	TESTQ CX, CX
	JZ    gbdone
	TAILMASK
	VMOVUPS.Z (SI), K1, Z12
	VMOVUPS.Z (DX), K1, Z13
	GELUBWDBODY
	VMOVUPS   Z0, K1, (DI)

gbdone:
	VZEROUPPER
	RET

// SIGMOIDBODY: Z12 = g; Z14 = sigmoid(g) = 1/(1+e^-g); uses Z0-Z3.
#define SIGMOIDBODY \
	VMULPS Z28, Z12, Z0; \
	EXP;                 \
	VADDPS Z26, Z0, Z0;  \
	VDIVPS Z0, Z26, Z14

// func swigluAVX512(n int, gate, up, out *float32)
TEXT ·swigluAVX512(SB), NOSPLIT, $0-32
	MOVQ n+0(FP), CX
	MOVQ gate+8(FP), SI
	MOVQ up+16(FP), DX
	MOVQ out+24(FP), DI
	LOADEXP
	VBROADCASTSS consts<>+68(SB), Z28

swloop:
	CMPQ CX, $16
	JLT  swtail
	VMOVUPS (SI), Z12
	SIGMOIDBODY
	VMULPS  Z12, Z14, Z14
	VMULPS  (DX), Z14, Z14
	VMOVUPS Z14, (DI)
	ADDQ    $64, SI
	ADDQ    $64, DX
	ADDQ    $64, DI
	SUBQ    $16, CX
	JMP     swloop

swtail:
	TESTQ CX, CX
	JZ    swdone
	TAILMASK
	VMOVUPS.Z (SI), K1, Z12
	VMOVUPS.Z (DX), K1, Z13
	SIGMOIDBODY
	VMULPS    Z12, Z14, Z14
	VMULPS    Z13, Z14, Z14
	VMOVUPS   Z14, K1, (DI)

swdone:
	VZEROUPPER
	RET

// SWIGLUBWDBODY: Z12 = g, Z13 = up, Z15 = dout; Z4 = dgate = dout*up*s*(1+g*(1-s)),
// Z5 = dup = g*s*dout; uses Z0-Z3, Z14.
#define SWIGLUBWDBODY \
	SIGMOIDBODY;              \
	VMULPS      Z12, Z14, Z5; \
	VMULPS      Z15, Z5, Z5;  \
	VSUBPS      Z14, Z26, Z4; \
	VFMADD213PS Z26, Z12, Z4; \
	VMULPS      Z14, Z4, Z4;  \
	VMULPS      Z15, Z4, Z4;  \
	VMULPS      Z13, Z4, Z4

// func swigluBwdAVX512(n int, gate, up, dout, dgate, dup *float32)
TEXT ·swigluBwdAVX512(SB), NOSPLIT, $0-48
	MOVQ n+0(FP), CX
	MOVQ gate+8(FP), SI
	MOVQ up+16(FP), DX
	MOVQ dout+24(FP), BX
	MOVQ dgate+32(FP), DI
	MOVQ dup+40(FP), R8
	LOADEXP
	VBROADCASTSS consts<>+68(SB), Z28

sbloop:
	CMPQ CX, $16
	JLT  sbtail
	VMOVUPS (SI), Z12
	VMOVUPS (DX), Z13
	VMOVUPS (BX), Z15
	SWIGLUBWDBODY
	VMOVUPS Z4, (DI)
	VMOVUPS Z5, (R8)
	ADDQ    $64, SI
	ADDQ    $64, DX
	ADDQ    $64, BX
	ADDQ    $64, DI
	ADDQ    $64, R8
	SUBQ    $16, CX
	JMP     sbloop

sbtail:
	TESTQ CX, CX
	JZ    sbdone
	TAILMASK
	VMOVUPS.Z (SI), K1, Z12
	VMOVUPS.Z (DX), K1, Z13
	VMOVUPS.Z (BX), K1, Z15
	SWIGLUBWDBODY
	VMOVUPS   Z4, K1, (DI)
	VMOVUPS   Z5, K1, (R8)

sbdone:
	VZEROUPPER
	RET

// func addAVX512(n int, dst, src *float32)
TEXT ·addAVX512(SB), NOSPLIT, $0-24
	MOVQ n+0(FP), CX
	MOVQ dst+8(FP), DI
	MOVQ src+16(FP), SI

addloop:
	CMPQ CX, $16
	JLT  addtail
	VMOVUPS (SI), Z0
	VADDPS  (DI), Z0, Z0
	VMOVUPS Z0, (DI)
	ADDQ    $64, SI
	ADDQ    $64, DI
	SUBQ    $16, CX
	JMP     addloop

addtail:
	TESTQ CX, CX
	JZ    adddone
	TAILMASK
	VMOVUPS.Z (SI), K1, Z0
	VMOVUPS.Z (DI), K1, Z1
	VADDPS    Z1, Z0, Z0
	VMOVUPS   Z0, K1, (DI)

adddone:
	VZEROUPPER
	RET

// WIDEN splits the 16 floats of Z2 into float64 vectors Z0 (lanes 0-7) and Z1 (8-15).
#define WIDEN \
	VEXTRACTF32X8 $1, Z2, Y3; \
	VCVTPS2PD     Y2, Z0;     \
	VCVTPS2PD     Y3, Z1

// func sumDev64AVX512(n int, x *float32, m float64, sq int, out *[16]float64)
// out lanes: Σ (x-m) (sq 0) or Σ (x-m)^2 (sq 1), in float64.
TEXT ·sumDev64AVX512(SB), NOSPLIT, $0-40
	MOVQ n+0(FP), CX
	MOVQ x+8(FP), SI
	VBROADCASTSD m+16(FP), Z10
	MOVQ sq+24(FP), BX
	MOVQ out+32(FP), DI
	VXORPD Z8, Z8, Z8
	VXORPD Z9, Z9, Z9
	MOVL   $0xffff, AX
	KMOVW  AX, K1

sdloop:
	CMPQ CX, $16
	JLT  sdtail
	VMOVUPS (SI), Z2

sdbody:
	WIDEN
	VSUBPD  Z10, Z0, Z0
	VSUBPD  Z10, Z1, Z1
	KSHIFTRW $8, K1, K2
	TESTQ   BX, BX
	JNZ     sdsq
	VADDPD  Z0, Z8, K1, Z8
	VADDPD  Z1, Z9, K2, Z9
	JMP     sdnext

sdsq:
	VFMADD231PD Z0, Z0, K1, Z8
	VFMADD231PD Z1, Z1, K2, Z9

sdnext:
	ADDQ $64, SI
	SUBQ $16, CX
	JGT  sdloop
	JMP  sddone

sdtail:
	TESTQ CX, CX
	JLE   sddone
	TAILMASK
	VMOVUPS.Z (SI), K1, Z2
	JMP       sdbody

sddone:
	VMOVUPD Z8, (DI)
	VMOVUPD Z9, 64(DI)
	VZEROUPPER
	RET

// func normRowAVX512(n int, x, w, b, o *float32, m, r float32)
// o = (x-m)*r*w + b (b nil: no b).
TEXT ·normRowAVX512(SB), NOSPLIT, $0-48
	MOVQ n+0(FP), CX
	MOVQ x+8(FP), SI
	MOVQ w+16(FP), DX
	MOVQ b+24(FP), BX
	MOVQ o+32(FP), DI
	VBROADCASTSS m+40(FP), Z10
	VBROADCASTSS r+44(FP), Z11
	MOVL  $0xffff, AX
	KMOVW AX, K1

nrloop:
	CMPQ CX, $16
	JGE  nrbody
	TESTQ CX, CX
	JLE  nrdone
	TAILMASK

nrbody:
	VMOVUPS.Z (SI), K1, Z0
	VMOVUPS.Z (DX), K1, Z1
	VSUBPS    Z10, Z0, Z0
	VMULPS    Z11, Z0, Z0
	VMULPS    Z1, Z0, Z0
	TESTQ     BX, BX
	JZ        nrnob
	VMOVUPS.Z (BX), K1, Z2
	VADDPS    Z2, Z0, Z0
	ADDQ      $64, BX

nrnob:
	VMOVUPS Z0, K1, (DI)
	ADDQ    $64, SI
	ADDQ    $64, DX
	ADDQ    $64, DI
	SUBQ    $16, CX
	JGT     nrloop

nrdone:
	VZEROUPPER
	RET

// func normBwdSumsAVX512(n int, x, w, d *float32, m, r float32, out *[32]float64)
// With dn = d*w, nn = (x-m)*r: out[0:16] lanes of Σ dn, out[16:32] lanes of Σ dn*nn.
TEXT ·normBwdSumsAVX512(SB), NOSPLIT, $0-48
	MOVQ n+0(FP), CX
	MOVQ x+8(FP), SI
	MOVQ w+16(FP), DX
	MOVQ d+24(FP), BX
	VBROADCASTSS m+32(FP), Z10
	VBROADCASTSS r+36(FP), Z11
	MOVQ out+40(FP), DI
	VXORPD Z6, Z6, Z6
	VXORPD Z7, Z7, Z7
	VXORPD Z8, Z8, Z8
	VXORPD Z9, Z9, Z9
	MOVL  $0xffff, AX
	KMOVW AX, K1

nbloop:
	CMPQ CX, $16
	JGE  nbbody
	TESTQ CX, CX
	JLE  nbdone
	TAILMASK

nbbody:
	VMOVUPS.Z (SI), K1, Z4
	VMOVUPS.Z (DX), K1, Z5
	VMOVUPS.Z (BX), K1, Z2
	VMULPS    Z5, Z2, Z2
	VSUBPS    Z10, Z4, Z4
	VMULPS    Z11, Z4, Z4
	VMULPS    Z2, Z4, Z4
	WIDEN
	VADDPD    Z0, Z6, Z6
	VADDPD    Z1, Z7, Z7
	VMOVAPS   Z4, Z2
	WIDEN
	VADDPD    Z0, Z8, Z8
	VADDPD    Z1, Z9, Z9
	ADDQ      $64, SI
	ADDQ      $64, DX
	ADDQ      $64, BX
	SUBQ      $16, CX
	JGT       nbloop

nbdone:
	VMOVUPD Z6, (DI)
	VMOVUPD Z7, 64(DI)
	VMOVUPD Z8, 128(DI)
	VMOVUPD Z9, 192(DI)
	VZEROUPPER
	RET

// func normBwdApplyAVX512(n int, x, w, d, di *float32, m, r, a, bb float32)
// di += r*(d*w - a - (x-m)*r*bb).
TEXT ·normBwdApplyAVX512(SB), NOSPLIT, $0-56
	MOVQ n+0(FP), CX
	MOVQ x+8(FP), SI
	MOVQ w+16(FP), DX
	MOVQ d+24(FP), BX
	MOVQ di+32(FP), DI
	VBROADCASTSS m+40(FP), Z10
	VBROADCASTSS r+44(FP), Z11
	VBROADCASTSS a+48(FP), Z12
	VBROADCASTSS bb+52(FP), Z13
	MOVL  $0xffff, AX
	KMOVW AX, K1

naloop:
	CMPQ CX, $16
	JGE  nabody
	TESTQ CX, CX
	JLE  nadone
	TAILMASK

nabody:
	VMOVUPS.Z    (SI), K1, Z0
	VMOVUPS.Z    (DX), K1, Z1
	VMOVUPS.Z    (BX), K1, Z2
	VMOVUPS.Z    (DI), K1, Z3
	VSUBPS       Z10, Z0, Z0
	VMULPS       Z11, Z0, Z0
	VMULPS       Z1, Z2, Z2
	VSUBPS       Z12, Z2, Z2
	VFNMADD231PS Z13, Z0, Z2
	VFMADD231PS  Z11, Z2, Z3
	VMOVUPS      Z3, K1, (DI)
	ADDQ         $64, SI
	ADDQ         $64, DX
	ADDQ         $64, BX
	ADDQ         $64, DI
	SUBQ         $16, CX
	JGT          naloop

nadone:
	VZEROUPPER
	RET

// func normWeightGradAVX512(n int, acc, d, x *float32, m, r float32)
// acc += d*(x-m)*r.
TEXT ·normWeightGradAVX512(SB), NOSPLIT, $0-40
	MOVQ n+0(FP), CX
	MOVQ acc+8(FP), DI
	MOVQ d+16(FP), BX
	MOVQ x+24(FP), SI
	VBROADCASTSS m+32(FP), Z10
	VBROADCASTSS r+36(FP), Z11
	MOVL  $0xffff, AX
	KMOVW AX, K1

nwloop:
	CMPQ CX, $16
	JGE  nwbody
	TESTQ CX, CX
	JLE  nwdone
	TAILMASK

nwbody:
	VMOVUPS.Z   (SI), K1, Z0
	VMOVUPS.Z   (BX), K1, Z1
	VMOVUPS.Z   (DI), K1, Z2
	VSUBPS      Z10, Z0, Z0
	VMULPS      Z1, Z0, Z0
	VFMADD231PS Z11, Z0, Z2
	VMOVUPS     Z2, K1, (DI)
	ADDQ        $64, SI
	ADDQ        $64, BX
	ADDQ        $64, DI
	SUBQ        $16, CX
	JGT         nwloop

nwdone:
	VZEROUPPER
	RET

// func dot64AVX512(n int, a, b *float32, out *[16]float64)
// out lanes: Σ float64(a*b) (the products rounded to float32 first).
TEXT ·dot64AVX512(SB), NOSPLIT, $0-32
	MOVQ n+0(FP), CX
	MOVQ a+8(FP), SI
	MOVQ b+16(FP), DX
	MOVQ out+24(FP), DI
	VXORPD Z8, Z8, Z8
	VXORPD Z9, Z9, Z9
	MOVL  $0xffff, AX
	KMOVW AX, K1

dtloop:
	CMPQ CX, $16
	JGE  dtbody
	TESTQ CX, CX
	JLE  dtdone
	TAILMASK

dtbody:
	VMOVUPS.Z (SI), K1, Z2
	VMOVUPS.Z (DX), K1, Z4
	VMULPS    Z4, Z2, Z2
	WIDEN
	VADDPD    Z0, Z8, Z8
	VADDPD    Z1, Z9, Z9
	ADDQ      $64, SI
	ADDQ      $64, DX
	SUBQ      $16, CX
	JGT       dtloop

dtdone:
	VMOVUPD Z8, (DI)
	VMOVUPD Z9, 64(DI)
	VZEROUPPER
	RET

// func mulSubAVX512(n int, p, dp *float32, c float32)
// dp = p*(dp - c).
TEXT ·mulSubAVX512(SB), NOSPLIT, $0-28
	MOVQ n+0(FP), CX
	MOVQ p+8(FP), SI
	MOVQ dp+16(FP), DI
	VBROADCASTSS c+24(FP), Z10
	MOVL  $0xffff, AX
	KMOVW AX, K1

msloop:
	CMPQ CX, $16
	JGE  msbody
	TESTQ CX, CX
	JLE  msdone
	TAILMASK

msbody:
	VMOVUPS.Z (SI), K1, Z0
	VMOVUPS.Z (DI), K1, Z1
	VSUBPS    Z10, Z1, Z1
	VMULPS    Z0, Z1, Z1
	VMOVUPS   Z1, K1, (DI)
	ADDQ      $64, SI
	ADDQ      $64, DI
	SUBQ      $16, CX
	JGT       msloop

msdone:
	VZEROUPPER
	RET

// ADAMW updates Z0 (w), Z2 (m), Z5 (v) from Z1 (g) with the constants in Z10-Z17,
// using Z3, Z4, Z6, Z7.
#define ADAMW \
	VMULPS Z10, Z0, Z0; \
	VMULPS Z11, Z2, Z2; \
	VMULPS Z1, Z13, Z3; \
	VADDPS Z3, Z2, Z2;  \
	VMULPS Z12, Z5, Z5; \
	VMULPS Z1, Z14, Z4; \
	VMULPS Z1, Z4, Z4;  \
	VADDPS Z4, Z5, Z5;  \
	VSQRTPS Z5, Z6;     \
	VDIVPS Z15, Z6, Z6; \
	VADDPS Z16, Z6, Z6; \
	VDIVPS Z6, Z2, Z7;  \
	VMULPS Z17, Z7, Z7; \
	VSUBPS Z7, Z0, Z0

// func adamwAVX512(n int, w, grad, m, v *float32, p *AdamWParams)
// p: Decay, B1, B2, A1, A2, Bc2Sqrt, Eps, StepSize, GradScale (float32 each, in this order;
// GradScale already 1 when unset).
// The operations and their order are those of AdamWRef (no fused multiply-adds).
TEXT ·adamwAVX512(SB), NOSPLIT, $0-48
	MOVQ n+0(FP), CX
	MOVQ w+8(FP), DI
	MOVQ grad+16(FP), SI
	MOVQ m+24(FP), R8
	MOVQ v+32(FP), R9
	MOVQ p+40(FP), DX
	VBROADCASTSS 0(DX), Z10  // Decay
	VBROADCASTSS 4(DX), Z11  // B1
	VBROADCASTSS 8(DX), Z12  // B2
	VBROADCASTSS 12(DX), Z13 // A1
	VBROADCASTSS 16(DX), Z14 // A2
	VBROADCASTSS 20(DX), Z15 // Bc2Sqrt
	VBROADCASTSS 24(DX), Z16 // Eps
	VBROADCASTSS 28(DX), Z17 // StepSize
	VBROADCASTSS 32(DX), Z18 // GradScale

adamwloop:
	CMPQ    CX, $16
	JLT     adamwtail
	VMOVUPS (DI), Z0
	VMOVUPS (SI), Z1
	VMOVUPS (R8), Z2
	VMOVUPS (R9), Z5
	VMULPS  Z18, Z1, Z1
	ADAMW
	VMOVUPS Z2, (R8)
	VMOVUPS Z5, (R9)
	VMOVUPS Z0, (DI)
	ADDQ    $64, DI
	ADDQ    $64, SI
	ADDQ    $64, R8
	ADDQ    $64, R9
	SUBQ    $16, CX
	JMP     adamwloop

adamwtail:
	TESTQ CX, CX
	JZ    adamwdone
	TAILMASK
	VMOVUPS.Z (DI), K1, Z0
	VMOVUPS.Z (SI), K1, Z1
	VMOVUPS.Z (R8), K1, Z2
	VMOVUPS.Z (R9), K1, Z5
	VMULPS  Z18, Z1, Z1
	ADAMW
	VMOVUPS Z2, K1, (R8)
	VMOVUPS Z5, K1, (R9)
	VMOVUPS Z0, K1, (DI)

adamwdone:
	VZEROUPPER
	RET
