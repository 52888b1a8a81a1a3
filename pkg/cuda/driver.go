//go:build cuda

package cuda

import (
	"fmt"
	"math"
	"os"
	"runtime"
	"unsafe"

	"gorgonia.org/cu"
)

// dtype is the storage type of a device buffer.
type dtype int

const (
	f32 dtype = iota
	bf16
)

func (t dtype) size() int64 {
	if t == bf16 {
		return 2
	}
	return 4
}

func (t dtype) suffix() string {
	if t == bf16 {
		return "_bf16"
	}
	return "_f32"
}

// device is one GPU's context with the kernel modules loaded. Every method that touches
// the GPU runs between bind and unbind: CUDA contexts are current per OS thread, and a
// goroutine may move between threads.
type device struct {
	dev      cu.Device
	ctx      cu.CUContext
	name     string
	fns      map[string]cu.Function
	smemMax  int  // the largest dynamic shared memory a block may opt in to
	blas     bool // cuBLAS loaded
	batched  bool // and has cublasGemmStridedBatchedEx
	blasVer  int
	smemSet  map[string]int
	firstErr error
}

// openDevice retains the primary context of GPU ordinal and loads every kernel family.
func openDevice(ordinal int, ownGEMM bool) (*device, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	n, err := cu.NumDevices()
	if err != nil {
		return nil, fmt.Errorf("cuda: %w", err)
	}
	if ordinal < 0 || ordinal >= n {
		return nil, fmt.Errorf("cuda: no GPU %d (%d present)", ordinal, n)
	}
	d := &device{fns: map[string]cu.Function{}, smemSet: map[string]int{}}
	if d.dev, err = cu.GetDevice(ordinal); err != nil {
		return nil, fmt.Errorf("cuda: %w", err)
	}
	if d.ctx, err = d.dev.RetainPrimaryCtx(); err != nil {
		return nil, fmt.Errorf("cuda: primary context: %w", err)
	}
	if err := cu.SetCurrentContext(d.ctx); err != nil {
		return nil, fmt.Errorf("cuda: %w", err)
	}
	d.name, _ = d.dev.Name()
	if major, err := d.dev.Attribute(cu.ComputeCapabilityMajor); err == nil && major < 8 {
		return nil, fmt.Errorf("cuda: %s has compute capability %d.x; the kernels need 8.0 or newer (bf16 tensor cores)", d.name, major)
	}
	d.smemMax = smemOptin(ordinal)
	for fam := range Families {
		img, err := Fatbin(fam)
		if err != nil {
			return nil, err
		}
		mod, err := cu.LoadData(string(img))
		if err != nil {
			return nil, fmt.Errorf("cuda: loading kernels/build/%s.fatbin on %s: %w", fam, d.name, err)
		}
		for _, name := range KernelNames(fam) {
			fn, err := mod.Function(name)
			if err != nil {
				return nil, fmt.Errorf("cuda: kernel %s in %s.fatbin: %w", name, fam, err)
			}
			d.fns[name] = fn
		}
	}
	if !ownGEMM {
		if v, err := blasOpen(os.Getenv("CPO_CUBLAS")); err == nil {
			d.blas, d.blasVer, d.batched = true, v, blasHasBatched()
		}
	}
	return d, nil
}

// bind makes the device's context current on a locked OS thread; call unbind after.
func (d *device) bind() {
	runtime.LockOSThread()
	d.check(cu.SetCurrentContext(d.ctx))
}

func (d *device) unbind() { runtime.UnlockOSThread() }

// check keeps the first error; GPU work after a failure is pointless, so callers test
// d.err() at the end of a public method.
func (d *device) check(err error) {
	if err != nil && d.firstErr == nil {
		d.firstErr = err
	}
}

func (d *device) err() error { return d.firstErr }

func (d *device) describe() string {
	g := "own GEMM kernels"
	if d.blas {
		g = fmt.Sprintf("cuBLAS %d", d.blasVer)
	}
	return fmt.Sprintf("%s, %s", d.name, g)
}

// launch runs kernel name on grid x block threads with smem bytes of dynamic shared
// memory. Arguments are cu.DevicePtr (pointers), int32 (C int), int64 (C long) or float32
// (C float): gorgonia.org/cu copies every argument as an 8-byte slot and the kernel reads
// the low bytes it declares (little endian).
func (d *device) launch(name string, grid [3]int, block [3]int, smem int, args ...any) {
	if d.firstErr != nil {
		return
	}
	fn, ok := d.fns[name]
	if !ok {
		d.check(fmt.Errorf("cuda: no kernel %s", name))
		return
	}
	if smem > 48<<10 && d.smemSet[name] < smem {
		if smem > d.smemMax {
			d.check(fmt.Errorf("cuda: %s needs %d bytes of shared memory, the GPU allows %d", name, smem, d.smemMax))
			return
		}
		if err := setMaxDynamicSmem(fn, smem); err != nil {
			d.check(err)
			return
		}
		d.smemSet[name] = smem
	}
	slots := make([]uint64, len(args))
	ptrs := make([]unsafe.Pointer, len(args))
	for i, a := range args {
		switch v := a.(type) {
		case cu.DevicePtr:
			slots[i] = uint64(v)
		case int32:
			slots[i] = uint64(uint32(v))
		case int64:
			slots[i] = uint64(v)
		case float32:
			slots[i] = uint64(math.Float32bits(v))
		default:
			panic(fmt.Sprintf("cuda: kernel %s argument %d has type %T", name, i, a))
		}
		ptrs[i] = unsafe.Pointer(&slots[i])
	}
	err := fn.Launch(grid[0], grid[1], grid[2], block[0], block[1], block[2], smem, cu.Stream{}, ptrs)
	if err != nil {
		d.check(fmt.Errorf("cuda: launching %s: %w", name, err))
	}
}

// launch1 runs a one-dimensional kernel with one thread per element of n.
func (d *device) launch1(name string, n int64, args ...any) {
	if n <= 0 {
		return
	}
	const bs = 256
	d.launch(name, [3]int{int((n + bs - 1) / bs), 1, 1}, [3]int{bs, 1, 1}, 0, args...)
}

func (d *device) alloc(bytes int64) cu.DevicePtr {
	if d.firstErr != nil || bytes <= 0 {
		return 0
	}
	p, err := cu.MemAlloc(bytes)
	if err != nil {
		d.check(fmt.Errorf("cuda: allocating %d MB on %s: %w", bytes>>20, d.name, err))
		return 0
	}
	return p
}

func (d *device) free(p cu.DevicePtr) {
	if p != 0 {
		d.check(cu.MemFree(p))
	}
}

func (d *device) upload(dst cu.DevicePtr, src unsafe.Pointer, bytes int64) {
	if d.firstErr == nil && bytes > 0 {
		d.check(cu.MemcpyHtoD(dst, src, bytes))
	}
}

func (d *device) download(dst unsafe.Pointer, src cu.DevicePtr, bytes int64) {
	if d.firstErr == nil && bytes > 0 {
		d.check(cu.MemcpyDtoH(dst, src, bytes))
	}
}

func (d *device) copyD(dst, src cu.DevicePtr, bytes int64) {
	if d.firstErr == nil && bytes > 0 {
		d.check(cu.MemcpyDtoD(dst, src, bytes))
	}
}

func (d *device) zero(p cu.DevicePtr, bytes int64) {
	if d.firstErr == nil && bytes > 0 {
		d.check(cu.MemsetD8(p, 0, bytes))
	}
}

func (d *device) sync() { d.check(cu.Synchronize()) }

// gemm is the row-major product of pkg/gemm.Sgemm on the device:
//
//	C (M, N) = alpha * op(A) (M, K) · op(B) (K, N) + beta * C
//
// op(A) = A (M, K), lda, or with transA A^T of a stored (K, M); likewise B. A and B hold
// at; C holds ct (ct = f32 with at = bf16: the float32 gradient arena). cuBLAS, being
// column-major, computes C^T = op(B)^T op(A)^T.
func (d *device) gemm(transA, transB bool, M, N, K int, alpha float32, A cu.DevicePtr, lda int, B cu.DevicePtr, ldb int, beta float32, C cu.DevicePtr, ldc int, at, ct dtype, own bool) {
	if d.firstErr != nil || M == 0 || N == 0 {
		return
	}
	if d.blas && !own {
		ty := func(t dtype) int {
			if t == bf16 {
				return cudaR16BF
			}
			return cudaR32F
		}
		d.check(blasGemm(transB, transA, N, M, K, alpha, B, ty(at), ldb, A, ty(at), lda, beta, C, ty(ct), ldc))
		return
	}
	b2i := func(b bool) int32 {
		if b {
			return 1
		}
		return 0
	}
	grid := [3]int{(N + 63) / 64, (M + 63) / 64, 1}
	args := []any{b2i(transA), b2i(transB), int32(M), int32(N), int32(K), alpha, A, int32(lda), B, int32(ldb), beta, C, int32(ldc)}
	switch {
	case at == f32:
		d.launch("gemm_f32", grid, [3]int{256, 1, 1}, 0, args...)
	case ct == bf16:
		d.launch("gemm_bf16", grid, [3]int{128, 1, 1}, 0, args...)
	default:
		d.launch("gemm_bf16_f32", grid, [3]int{128, 1, 1}, 0, args...)
	}
}

// gemmBatched is gemm over batch independent products (row-major, as gemm), the i-th at
// element offsets i*sa, i*sb, i*sc of A, B and C. Only through cuBLAS: callers check
// d.batched.
func (d *device) gemmBatched(transA, transB bool, M, N, K int, alpha float32, A cu.DevicePtr, lda int, sa int64, B cu.DevicePtr, ldb int, sb int64, beta float32, C cu.DevicePtr, ldc int, sc int64, batch int, at, ct dtype) {
	if d.firstErr != nil || M == 0 || N == 0 || batch == 0 {
		return
	}
	if !d.batched {
		d.check(fmt.Errorf("cuda: batched products need cuBLAS"))
		return
	}
	ty := func(t dtype) int {
		if t == bf16 {
			return cudaR16BF
		}
		return cudaR32F
	}
	d.check(blasGemmBatched(transB, transA, N, M, K, alpha, B, ty(at), ldb, sb, A, ty(at), lda, sa, beta, C, ty(ct), ldc, sc, batch))
}
