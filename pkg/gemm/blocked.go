package gemm

import (
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/cpo-toolchain/cpo/pkg/parallel"
)

// maxPackA (a variable so tests can shrink it) bounds the packed copy of op(A) (in floats): op(A) is packed in blocks of whole
// rows (all of K) of at most this size, and op(B) is re-packed once per block.
var maxPackA = 2 << 20

// sgemmBlocked computes C = alpha*op(A)*op(B) + beta*C with kernel kn on up to workers
// goroutines. m, n, k > 0, alpha != 0, and beta is +0 when zero.
//
// Loop nest for one block of rows (rows i0..i0+rows of C, op(A) packed whole: np panels of
// mr rows × k, k-major inside a panel):
//
//	tasks (tm, tn): panels of rows × panels of columns of C, handed out dynamically
//	  for pc over K by kc:            pack op(B)[pc:pc+kc, cols] into nr-column panels
//	    for ic over row panels by mc: (this A block stays in L2)
//	      for jr over column panels:  (this B micro-panel stays in L1)
//	        for ir in the A block:    micro-kernel on one mr×nr tile of C
func sgemmBlocked(kn *kernel, workers int, transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	pl := plan{kn: kn, transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc}
	mr, nr := kn.mr, kn.nr
	pl.unpacked = useUnpackedA && !transA && kn.fnU != nil && mr == 12
	mb := maxPackA / k / mr * mr
	if mb < mr {
		mb = mr
	}
	if pl.unpacked {
		mb = m // nothing is packed: one block of all rows
	}
	pl.npn = (n + nr - 1) / nr
	// Columns per task: many small tasks, so that the last one to finish leaves the other
	// workers idle only briefly (and both cores stay busy when another process slows one).
	// A narrow task costs little: it packs only its own columns of B, and every task walks
	// the same packed A.
	want := 1
	if workers > 1 {
		want = 8 * workers
	}
	ppt := (pl.npn + want - 1) / want
	if minP := (64 + nr - 1) / nr; ppt < minP {
		ppt = minP
	}
	if maxP := kn.nc / nr; ppt > maxP {
		ppt = maxP
	}
	pl.ppt = min(ppt, pl.npn)
	pl.ntn = (pl.npn + pl.ppt - 1) / pl.ppt
	pl.kc = min(kn.kc, k)
	// Per worker: the packed B block, then an mr×nr tile for the edges (and, unpacked, an
	// mr×kc copy of the last partial row panel).
	wsize := pl.kc*pl.ppt*nr + pl.tmpSize()

	if workers == 1 {
		wb := getBuffer(wsize)
		for i0 := 0; i0 < m; i0 += mb {
			rows := min(mb, m-i0)
			abuf := pl.aBuffer(rows)
			pl.block(i0, rows, abuf, 1)
			pl.packA(0, pl.np)
			for t := 0; t < pl.ntm*pl.ntn; t++ {
				pl.task(t, wb.f)
			}
			pl.putABuffer(abuf)
		}
		putBuffer(wb)
		return
	}
	if k*pl.npn*nr <= maxPackB {
		pl.sharedB(workers, mb)
		return
	}
	bufs := make([]*buffer, parallel.Workers(workers))
	for i0 := 0; i0 < m; i0 += mb {
		rows := min(mb, m-i0)
		abuf := pl.aBuffer(rows)
		pl.block(i0, rows, abuf, 2*workers)
		if !pl.unpacked {
			parallel.For(pl.np, workers, pl.packA)
		}
		parallel.Tasks(pl.ntm*pl.ntn, workers, func(w, t int) {
			if bufs[w] == nil {
				bufs[w] = getBuffer(wsize)
			}
			pl.task(t, bufs[w].f)
		})
		pl.putABuffer(abuf)
	}
	for _, bf := range bufs {
		if bf != nil {
			putBuffer(bf)
		}
	}
}

// maxPackB (a variable so tests can shrink it) bounds, in floats, the op(B) that the
// parallel path packs whole, once, before computing (sharedB).
var maxPackB = 4 << 20

// Work per compute task of sharedB, in FLOP: about 0.1 ms on one core, small enough that the
// last task leaves the other workers idle only briefly.
const sharedTaskFlops = 12 << 20

// sharedB is the parallel path of sgemmBlocked when op(B) fits maxPackB (every product of
// a small model's layers): op(B) is packed whole once (kc-deep blocks of nr-column panels),
// and then, for each block of mb rows, op(A); the packing is split into tasks that go first
// in the same dynamic task list as the products, so that no core waits at a barrier between
// packing and computing. Since neither operand is packed again per task, the products are
// cut into many small tiles (rows × columns of C), and the last tile to finish leaves the
// other cores idle only briefly. Each element of C still sums its K blocks in order:
// results equal those of one thread.
func (pl *plan) sharedB(workers, mb int) {
	kn := pl.kn
	mr, nr, k, n, kc := kn.mr, kn.nr, pl.k, pl.n, pl.kc
	npn := pl.npn
	bbuf := getBuffer(k * npn * nr)
	bp := bbuf.f
	// op(B) packing tasks: (K block, 4 column panels).
	const bq = 4
	nbq := (npn + bq - 1) / bq
	nkb := (k + kc - 1) / kc
	packBTask := func(t int) {
		pc := (t / nbq) * kc
		kcb := min(kc, k-pc)
		q0 := (t % nbq) * bq
		q1 := min(npn, q0+bq)
		packB(bp[pc*npn*nr+q0*kcb*nr:], pl.transB, pl.b, pl.ldb, pc, kcb, q0*nr, min(n, q1*nr)-q0*nr, kn)
	}
	nw := parallel.Workers(workers)
	tmps := make([]*buffer, nw)
	for i0 := 0; i0 < pl.m; i0 += mb {
		rows := min(mb, pl.m-i0)
		np := (rows + mr - 1) / mr
		abuf := pl.aBuffer(rows)
		pl.i0, pl.rows, pl.np = i0, rows, np
		if abuf != nil {
			pl.ap = abuf.f
		}
		// Compute tiles: pmt row panels × ppt column panels.
		want := max(8*nw, int(2*float64(rows)*float64(n)*float64(k)/sharedTaskFlops))
		ppt := max(2, (npn+want-1)/want)
		ntn := (npn + ppt - 1) / ppt
		ntm := max(1, min((want+ntn-1)/ntn, np/8)) // at least 8 panels (96 rows) a tile
		pmt := (np + ntm - 1) / ntm
		ntm = (np + pmt - 1) / pmt
		// op(A) packing tasks of apt panels; op(B) is packed with the first block only.
		apt := max(1, (np+4*nw-1)/(4*nw))
		nat := (np + apt - 1) / apt
		if pl.unpacked {
			nat = 0
		}
		npack := nat
		if i0 == 0 {
			npack += nkb * nbq
		}
		// done[x] is set when packing task x has finished: op(A) chunks first, then (first
		// block only) op(B) tasks in order of K block, then of column group.
		done := make([]atomic.Bool, npack)
		wait := func(x int) {
			for !done[x].Load() {
				runtime.Gosched()
			}
		}
		parallel.Tasks(npack+ntm*ntn, workers, func(w, t int) {
			if t < npack {
				if t < nat {
					pl.packA(t*apt, min(np, (t+1)*apt))
				} else {
					packBTask(t - nat)
				}
				done[t].Store(true)
				return
			}
			if tmps[w] == nil {
				tmps[w] = getBuffer(pl.tmpSize())
			}
			t -= npack
			tm, tn := t%ntm, t/ntm
			pr0, pr1 := tm*pmt, min(np, (tm+1)*pmt)
			jp0, jp1 := tn*ppt, min(npn, (tn+1)*ppt)
			// Every packing task was handed out before this one; wait only for those that
			// pack this tile's panels and are still running (at most one task's time).
			for x := pr0 / apt; nat > 0 && x <= (pr1-1)/apt; x++ {
				wait(x)
			}
			for pc := 0; pc < k; pc += kc {
				if npack > nat {
					for q := jp0 / bq; q <= (jp1-1)/bq; q++ {
						wait(nat + (pc/kc)*nbq + q)
					}
				}
				kcb := min(kc, k-pc)
				pl.tile(pc, kcb, pr0, pr1, jp0, jp1, bp[pc*npn*nr:], 0, tmps[w].f)
			}
		})
		pl.putABuffer(abuf)
	}
	for _, bf := range tmps {
		if bf != nil {
			putBuffer(bf)
		}
	}
	putBuffer(bbuf)
}

// plan holds one Sgemm call and its blocking (see sgemmBlocked).
type plan struct {
	kn             *kernel
	transA, transB bool
	m, n, k        int
	alpha, beta    float32
	a, b, c        []float32
	lda, ldb, ldc  int

	npn, ppt, ntn int // column panels of C; panels per task; column tasks
	kc            int // depth of a packed block
	// unpacked: op(A) = A is read as stored by kn.fnU, not packed (ap is nil).
	unpacked bool

	// The current block of rows: C rows i0..i0+rows, np panels of packed op(A) in ap,
	// split into ntm row tasks of pmt panels.
	i0, rows, np, ntm, pmt int
	ap                     []float32
}

// useUnpackedA (a variable so tests can switch it) lets sgemmBlocked read an untransposed
// A as stored with the kernel's fnU instead of packing it.
var useUnpackedA = true

// tmpSize is the scratch each worker needs beside packed B, in floats: an mr×nr tile for
// the edges of C and, when A is read unpacked, an mr×kc copy of the last partial row panel.
func (pl *plan) tmpSize() int {
	if pl.unpacked {
		return pl.kn.mr*pl.kn.nr + pl.kn.mr*pl.kc
	}
	return pl.kn.mr * pl.kn.nr
}

// aBuffer returns the packed-A storage for a block of rows (nil when A is read unpacked).
func (pl *plan) aBuffer(rows int) *buffer {
	if pl.unpacked {
		return nil
	}
	mr := pl.kn.mr
	return getBuffer((rows + mr - 1) / mr * mr * pl.k)
}

func (pl *plan) putABuffer(bf *buffer) {
	if bf != nil {
		putBuffer(bf)
	}
}

// block sets up the row block i0..i0+rows with packed-A storage ap, splitting the rows too
// when there are fewer than want column tasks (each row task packs its columns of B again).
func (pl *plan) block(i0, rows int, abuf *buffer, want int) {
	pl.i0, pl.rows, pl.ap = i0, rows, nil
	if abuf != nil {
		pl.ap = abuf.f
	}
	pl.np = (rows + pl.kn.mr - 1) / pl.kn.mr
	pl.ntm = 1
	if pl.ntn < want {
		// Too few column blocks to go round: split the rows too, keeping ≥ ~96 rows a task.
		pl.ntm = min((want+pl.ntn-1)/pl.ntn, max(1, pl.np*pl.kn.mr/96))
	}
	pl.pmt = (pl.np + pl.ntm - 1) / pl.ntm
	pl.ntm = (pl.np + pl.pmt - 1) / pl.pmt
}

// packA packs the row panels lo..hi of the current block.
func (pl *plan) packA(lo, hi int) {
	if pl.unpacked {
		return
	}
	mr, k := pl.kn.mr, pl.k
	if pl.transA && mr == 12 && pl.kn.packAT12 != nil {
		lo = pl.packATGrouped(lo, min(hi, pl.rows/mr))
	}
	for r := lo; r < hi; r++ {
		packA(pl.ap[r*mr*k:(r+1)*mr*k], pl.transA, pl.a, pl.lda, pl.i0+r*mr, min(mr, pl.rows-r*mr), k, pl.kn)
	}
}

// Tile of op(A)ᵀ packed at a time by packATGrouped: atGroup panels (12 columns each of the
// stored K×M matrix) by atDepth rows of K.
const atGroup, atDepth = 16, 16

// packATGrouped packs the full row panels lo..hi (hi ≤ rows/12) of a transposed A (stored
// K×M) with packAT12 and returns hi. One panel at a time would read 48 bytes from each of k
// rows lda apart (a new cache line, often a new page, per row); tiles of atGroup panels ×
// atDepth rows read 768 contiguous bytes per row instead (2× the packing rate for lda = 8192).
func (pl *plan) packATGrouped(lo, hi int) int {
	k, lda := pl.k, pl.lda
	for g0 := lo; g0 < hi; g0 += atGroup {
		g1 := min(hi, g0+atGroup)
		for p0 := 0; p0 < k; p0 += atDepth {
			pk := min(atDepth, k-p0)
			_ = pl.a[(p0+pk-1)*lda+pl.i0+g1*12-1] // the last element read
			for r := g0; r < g1; r++ {
				pl.kn.packAT12(pk, &pl.a[p0*lda+pl.i0+r*12], lda, &pl.ap[r*12*k+p0*12])
			}
		}
	}
	return max(lo, hi)
}

// task computes task t of the current block (a range of row panels × a range of column
// panels of C, over all of K) with scratch ws of the size set up by sgemmBlocked.
func (pl *plan) task(t int, ws []float32) {
	kn := pl.kn
	nr, k, n, kc := kn.nr, pl.k, pl.n, pl.kc
	tm, tn := t%pl.ntm, t/pl.ntm
	pr0, pr1 := tm*pl.pmt, min(pl.np, (tm+1)*pl.pmt)
	jp0, jp1 := tn*pl.ppt, min(pl.npn, (tn+1)*pl.ppt)
	col0 := jp0 * nr
	cols := min(n, jp1*nr) - col0
	bp := ws[:kc*pl.ppt*nr]
	tmp := ws[kc*pl.ppt*nr : kc*pl.ppt*nr+pl.tmpSize()]
	for pc := 0; pc < k; pc += kc {
		kcb := min(kc, k-pc)
		packB(bp, pl.transB, pl.b, pl.ldb, pc, kcb, col0, cols, kn)
		pl.tile(pc, kcb, pr0, pr1, jp0, jp1, bp, jp0, tmp)
	}
}

// tile multiplies the packed row panels pr0..pr1 of the current block by the column panels
// jp0..jp1 of op(B) for the K block pc..pc+kcb, into C (overwriting it with beta for the
// first K block, accumulating after). bp holds that K block of op(B) packed (see packB)
// from column panel jpBase on; tmp (tmpSize floats) starts with an mr×nr scratch tile for
// the edges.
func (pl *plan) tile(pc, kcb, pr0, pr1, jp0, jp1 int, bp []float32, jpBase int, tmp []float32) {
	kn := pl.kn
	mr, nr, k, n := kn.mr, kn.nr, pl.k, pl.n
	c, ldc, alpha := pl.c, pl.ldc, pl.alpha
	mcp := max(1, kn.mc/mr)
	end := pl.i0 + pl.rows
	be := pl.beta
	if pc > 0 {
		be = 1
	}
	// mul runs the kernel on row panel r (h rows) and the packed column panel bpp into the
	// tile at cp (row stride ldcp): C = alpha*A·B + beta*C.
	var mul func(r, h int, bpp, cp *float32, ldcp int, alpha, beta float32)
	if pl.unpacked {
		mul = pl.unpackedMul(pc, kcb, pr0, pr1, tmp)
	} else {
		mul = func(r, _ int, bpp, cp *float32, ldcp int, alpha, beta float32) {
			kn.fn(kcb, &pl.ap[r*mr*k+pc*mr], bpp, cp, ldcp, alpha, beta)
		}
	}
	for ic := pr0; ic < pr1; ic += mcp {
		ie := min(pr1, ic+mcp)
		for jp := jp0; jp < jp1; jp++ {
			bpp := &bp[(jp-jpBase)*kcb*nr]
			j := jp * nr
			wd := min(nr, n-j)
			for r := ic; r < ie; r++ {
				i := pl.i0 + r*mr
				h := min(mr, end-i)
				if h == mr && wd == nr {
					mul(r, h, bpp, &c[i*ldc+j], ldc, alpha, be)
					continue
				}
				mul(r, h, bpp, &tmp[0], nr, 1, 0)
				storeEdge(c[i*ldc+j:], ldc, h, wd, tmp, nr, alpha, be)
			}
		}
	}
}

// unpackedMul is tile's multiply with A read as stored (pl.unpacked) by the kernel's fnU. A
// last row panel of fewer than mr rows is copied, once per call, into the scratch after the
// edge tile (mr rows of kcb floats, the missing rows zero).
func (pl *plan) unpackedMul(pc, kcb, pr0, pr1 int, tmp []float32) func(r, h int, bpp, cp *float32, ldcp int, alpha, beta float32) {
	kn := pl.kn
	mr, nr := kn.mr, kn.nr
	a, lda := pl.a, pl.lda
	end := pl.i0 + pl.rows
	edge := tmp[mr*nr : mr*nr+mr*kcb]
	if last := pl.np - 1; pl.rows%mr != 0 && pr0 <= last && last < pr1 {
		i := pl.i0 + last*mr
		h := end - i
		for ii := 0; ii < h; ii++ {
			copy(edge[ii*kcb:(ii+1)*kcb], a[(i+ii)*lda+pc:(i+ii)*lda+pc+kcb])
		}
		clear(edge[h*kcb:])
	}
	// The last element read by a full panel of rows of this K block.
	if full := min(pr1, pl.rows/mr); full > pr0 {
		_ = a[(pl.i0+full*mr-1)*lda+pc+kcb-1]
	}
	return func(r, h int, bpp, cp *float32, ldcp int, alpha, beta float32) {
		if h < mr {
			kn.fnU(kcb, &edge[0], kcb, bpp, cp, ldcp, alpha, beta)
			return
		}
		kn.fnU(kcb, &a[(pl.i0+r*mr)*lda+pc], lda, bpp, cp, ldcp, alpha, beta)
	}
}

// packA copies rows i0..i0+h of op(A), all k columns, into dst as one panel of mr rows,
// k-major: dst[p*mr+i] = op(A)[i0+i][p]; rows h..mr are zero. len(dst) = mr*k.
// The kernel kn gives mr and the optional assembly copy (packAT12).
func packA(dst []float32, transA bool, a []float32, lda, i0, h, k int, kn *kernel) {
	mr := kn.mr
	if transA {
		if h == 12 && mr == 12 && kn.packAT12 != nil {
			_ = a[(k-1)*lda+i0+11] // the last element read
			kn.packAT12(k, &a[i0], lda, &dst[:12*k][0])
			return
		}
		// op(A)[i][p] = a[p*lda+i]: each k step is a contiguous run of h floats.
		if h == 12 && mr == 12 {
			for p := 0; p < k; p++ {
				*(*[12]float32)(dst[p*12:]) = *(*[12]float32)(a[p*lda+i0:])
			}
			return
		}
		for p := 0; p < k; p++ {
			d := dst[p*mr : p*mr+mr]
			n := copy(d, a[p*lda+i0:p*lda+i0+h])
			clear(d[n:])
		}
		return
	}
	if h == mr && mr == 12 {
		if kn.packAN12 != nil && k >= 16 {
			k16 := k / 16
			_ = a[(i0+11)*lda+16*k16-1] // the last element read
			kn.packAN12(k16, &a[i0*lda], lda, &dst[:12*k][0])
			for i := 0; i < 12; i++ {
				row := a[(i0+i)*lda : (i0+i)*lda+k]
				for p := 16 * k16; p < k; p++ {
					dst[p*12+i] = row[p]
				}
			}
			return
		}
		packA12(dst, a, lda, i0, k)
		return
	}
	if h < mr {
		clear(dst)
	}
	for i := 0; i < h; i++ {
		row := a[(i0+i)*lda : (i0+i)*lda+k]
		d := dst[i:]
		for p, v := range row {
			d[p*mr] = v
		}
	}
}

// packA12 is packA for a full 12-row panel of A stored untransposed.
func packA12(dst []float32, a []float32, lda, i0, k int) {
	r0 := a[(i0+0)*lda : (i0+0)*lda+k]
	r1 := a[(i0+1)*lda : (i0+1)*lda+k]
	r2 := a[(i0+2)*lda : (i0+2)*lda+k]
	r3 := a[(i0+3)*lda : (i0+3)*lda+k]
	r4 := a[(i0+4)*lda : (i0+4)*lda+k]
	r5 := a[(i0+5)*lda : (i0+5)*lda+k]
	r6 := a[(i0+6)*lda : (i0+6)*lda+k]
	r7 := a[(i0+7)*lda : (i0+7)*lda+k]
	r8 := a[(i0+8)*lda : (i0+8)*lda+k]
	r9 := a[(i0+9)*lda : (i0+9)*lda+k]
	r10 := a[(i0+10)*lda : (i0+10)*lda+k]
	r11 := a[(i0+11)*lda : (i0+11)*lda+k]
	dst = dst[:12*k]
	for p := range r0 {
		d := dst[12*p : 12*p+12 : 12*p+12]
		d[0], d[1], d[2], d[3] = r0[p], r1[p], r2[p], r3[p]
		d[4], d[5], d[6], d[7] = r4[p], r5[p], r6[p], r7[p]
		d[8], d[9], d[10], d[11] = r8[p], r9[p], r10[p], r11[p]
	}
}

// packB copies op(B)[pc:pc+kcb, j0:j0+cols] into dst as panels of nr columns, each k-major:
// panel q holds dst[q*kcb*nr + p*nr + j] = op(B)[pc+p][j0+q*nr+j]; columns past cols are zero.
// The kernel kn gives nr and the optional assembly packing (packBN32, packBT16).
func packB(dst []float32, transB bool, b []float32, ldb, pc, kcb, j0, cols int, kn *kernel) {
	nr := kn.nr
	nq := (cols + nr - 1) / nr
	bt16 := kn.packBT16
	if !transB && nr == 32 && kn.packBN32 != nil {
		// One panel at a time: sequential writes, 128-byte reads down the rows of B.
		q := 0
		for ; q < nq && (q+1)*32 <= cols; q++ {
			o := pc*ldb + j0 + q*32
			_ = b[o+(kcb-1)*ldb+31] // the last element read
			kn.packBN32(kcb, &b[o], ldb, &dst[q*kcb*32 : (q+1)*kcb*32][0])
		}
		if q == nq {
			return
		}
		// The last, partial panel.
		w := cols - q*32
		for p := 0; p < kcb; p++ {
			d := dst[q*kcb*32+p*32 : q*kcb*32+p*32+32]
			copy(d, b[(pc+p)*ldb+j0+q*32:(pc+p)*ldb+j0+q*32+w])
			clear(d[w:])
		}
		return
	}
	if !transB {
		if nr == 32 && cols == nq*32 {
			// Full 32-column panels: fixed-size copies, no memmove call per 128 bytes.
			for p := 0; p < kcb; p++ {
				row := b[(pc+p)*ldb+j0 : (pc+p)*ldb+j0+cols]
				for q := 0; q < nq; q++ {
					*(*[32]float32)(dst[q*kcb*32+p*32:]) = *(*[32]float32)(row[q*32:])
				}
			}
			return
		}
		for p := 0; p < kcb; p++ {
			row := b[(pc+p)*ldb+j0 : (pc+p)*ldb+j0+cols]
			for q := 0; q < nq; q++ {
				d := dst[q*kcb*nr+p*nr : q*kcb*nr+p*nr+nr]
				n := copy(d, row[q*nr:])
				clear(d[n:])
			}
		}
		return
	}
	// op(B)[p][j] = b[j*ldb+p]: gather columns, four at a time so that each k step writes
	// 16 contiguous bytes of the panel.
	for q := 0; q < nq; q++ {
		panel := dst[q*kcb*nr : (q+1)*kcb*nr]
		w := min(nr, cols-q*nr)
		if w < nr {
			clear(panel)
		}
		j := 0
		if bt16 != nil && nr == 32 && kcb >= 16 {
			k16 := kcb / 16
			for ; j+16 <= w; j += 16 {
				o := (j0+q*nr+j)*ldb + pc
				_ = b[o+15*ldb+16*k16-1] // the last element read
				bt16(k16, &b[o], ldb, &panel[j])
				for jj := j; jj < j+16; jj++ {
					col := b[o+(jj-j)*ldb : o+(jj-j)*ldb+kcb]
					for p := 16 * k16; p < kcb; p++ {
						panel[p*nr+jj] = col[p]
					}
				}
			}
		}
		for ; j+8 <= w; j += 8 {
			o := (j0+q*nr+j)*ldb + pc
			c0 := b[o : o+kcb]
			c1 := b[o+ldb : o+ldb+kcb]
			c2 := b[o+2*ldb : o+2*ldb+kcb]
			c3 := b[o+3*ldb : o+3*ldb+kcb]
			c4 := b[o+4*ldb : o+4*ldb+kcb]
			c5 := b[o+5*ldb : o+5*ldb+kcb]
			c6 := b[o+6*ldb : o+6*ldb+kcb]
			c7 := b[o+7*ldb : o+7*ldb+kcb]
			d := panel[j:]
			for p := range c0 {
				e := d[p*nr : p*nr+8 : p*nr+8]
				e[0], e[1], e[2], e[3] = c0[p], c1[p], c2[p], c3[p]
				e[4], e[5], e[6], e[7] = c4[p], c5[p], c6[p], c7[p]
			}
		}
		for ; j+4 <= w; j += 4 {
			o := (j0+q*nr+j)*ldb + pc
			c0 := b[o : o+kcb]
			c1 := b[o+ldb : o+ldb+kcb]
			c2 := b[o+2*ldb : o+2*ldb+kcb]
			c3 := b[o+3*ldb : o+3*ldb+kcb]
			d := panel[j:]
			for p := range c0 {
				e := d[p*nr : p*nr+4 : p*nr+4]
				e[0], e[1], e[2], e[3] = c0[p], c1[p], c2[p], c3[p]
			}
		}
		for ; j < w; j++ {
			col := b[(j0+q*nr+j)*ldb+pc : (j0+q*nr+j)*ldb+pc+kcb]
			d := panel[j:]
			for p, v := range col {
				d[p*nr] = v
			}
		}
	}
}

// buffer is a 64-byte aligned scratch slice, recycled through bufPool.
type buffer struct {
	raw []float32
	f   []float32
}

var bufPool sync.Pool

// getBuffer returns a buffer of n floats (contents undefined) aligned to 64 bytes.
func getBuffer(n int) *buffer {
	if v := bufPool.Get(); v != nil {
		bf := v.(*buffer)
		if cap(bf.raw) >= n+16 {
			bf.f = align64(bf.raw[:cap(bf.raw)])[:n]
			return bf
		}
	}
	raw := make([]float32, n+16)
	return &buffer{raw: raw, f: align64(raw)[:n]}
}

func putBuffer(bf *buffer) { bufPool.Put(bf) }

func align64(s []float32) []float32 {
	off := int(uintptr(unsafe.Pointer(&s[0])) & 63 / 4)
	if off == 0 {
		return s
	}
	return s[16-off:]
}

// storeEdge writes an edge tile computed into tmp (rows of nr floats) to the h×wd corner of
// C at c: C = alpha*tmp + be*C, C not read when be is +0.
func storeEdge(c []float32, ldc, h, wd int, tmp []float32, nr int, alpha, be float32) {
	for ii := 0; ii < h; ii++ {
		crow := c[ii*ldc : ii*ldc+wd]
		trow := tmp[ii*nr : ii*nr+wd]
		if be == 0 {
			for jj := range crow {
				crow[jj] = alpha * trow[jj]
			}
		} else {
			for jj := range crow {
				crow[jj] = alpha*trow[jj] + be*crow[jj]
			}
		}
	}
}
