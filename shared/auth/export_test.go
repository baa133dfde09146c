package auth

import "time"

// SetJWKSClock sets a key set's clock, so the external tests can step through its refresh
// schedule.
func SetJWKSClock(k *JWKS, now func() time.Time) { k.now = now }
