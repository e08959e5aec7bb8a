package workload

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
)

// SpecHash is a short, stable hash of a rendered spec. The API server defaults many fields
// of what we send, so comparing rendered and live objects field by field would see a
// difference on every pass; comparing the hash of what we rendered does not.
func SpecHash(spec any) string {
	data, err := json.Marshal(spec)
	if err != nil {
		// Rendered specs are plain API structs; Marshal cannot fail on them.
		panic(err)
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:8])
}
