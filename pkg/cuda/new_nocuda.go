//go:build !cuda

package cuda

import "github.com/cpo-toolchain/cpo/pkg/model"

// Built reports whether this binary has the GPU backend (the cuda build tag).
const Built = false

// New returns ErrNotBuilt: this binary was built without the cuda tag.
func New(m *model.Model, opts Options) (Trainer, error) {
	if _, err := opts.withDefaults(); err != nil {
		return nil, err
	}
	return nil, ErrNotBuilt
}
