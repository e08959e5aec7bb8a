package installtest

import (
	"encoding/json"
	"testing"
)

// normalized round-trips v through JSON, so that numbers and maps compare alike whichever
// decoder (kustomize, helm's YAML) produced them.
func normalized(t *testing.T, v any) any {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatal(err)
	}
	return out
}
