package policy

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sync"

	"waooaw.dev/governance/shared/canonical"
)

// InputSHA256 is the hex sha256 of the RFC 8785 (JCS) form of input, written by package
// canonical: anyone holding the input can recompute it from an attestation with any RFC
// 8785 implementation. Values other than the JSON shapes (structs, typed maps) are taken as
// encoding/json marshals them. An input RFC 8785 cannot write exactly (a string that is
// not UTF-8, NaN, a number its double would round) is refused with ErrBadInput.
func InputSHA256(input any) (string, error) {
	sum, err := inputSum(input)
	if err != nil {
		return "", fmt.Errorf("policy: hash input: %w: %w", ErrBadInput, err)
	}
	return hex.EncodeToString(sum[:]), nil
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

func inputSum(input any) ([32]byte, error) {
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	b, err := canonical.Append((*bp)[:0], input)
	if err != nil {
		return [32]byte{}, err
	}
	*bp = b
	return sha256.Sum256(b), nil
}
