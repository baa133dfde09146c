package policy

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"

	"waooaw.dev/governance/shared/canonical"
)

// InputSHA256 is the hex sha256 of the RFC 8785 (JCS) form of input, written by package
// canonical: anyone holding the input can recompute it from an attestation with any RFC
// 8785 implementation. Values other than the JSON shapes (structs, typed maps) are taken as
// encoding/json marshals them. A number a double would round (an integer past 2^53) is
// hashed as RFC 8785 implementations hash it, rounded; an input RFC 8785 cannot write at all
// (a string that is not UTF-8, NaN) is refused with ErrBadInput.
func InputSHA256(input any) (string, error) {
	sum, _, err := inputSum(input)
	if err != nil {
		return "", fmt.Errorf("policy: hash input: %w: %w", ErrBadInput, err)
	}
	return hex.EncodeToString(sum[:]), nil
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// inputSum hashes input. exact is false when a number in it was rounded: two inputs that
// policies tell apart then share a hash, so such a decision must not be cached by it.
func inputSum(input any) (sum [32]byte, exact bool, err error) {
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	b, err := canonical.Append((*bp)[:0], input)
	if errors.Is(err, canonical.ErrRounded) {
		r, _ := canonical.Rounded(input)
		b, err = canonical.Append((*bp)[:0], r)
		exact = false
	} else {
		exact = true
	}
	if err != nil {
		return [32]byte{}, false, err
	}
	*bp = b
	return sha256.Sum256(b), exact, nil
}
