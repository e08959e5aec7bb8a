package entrypoint

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/trainenv/trainenv/internal/access"
)

// DefaultKeySyncEvery is how often the mounted authorized_keys is compared with sshd's
// copy. The kubelet itself refreshes Secret volumes only every minute or so (its sync
// period plus its cache's TTL), so a shorter period would gain nothing.
const DefaultKeySyncEvery = 10 * time.Second

// KeySync keeps sshd's private copy of authorized_keys in step with the mounted Secret, so
// that a key added to or removed from the Secret takes effect without restarting the pod
// (which would kill running training). sshd reads the file at every login; the copy is
// replaced by rename, so a login sees the old file or the new one, never a part.
//
// The kubelet updates a Secret volume atomically too (it writes a new directory and swaps
// the ..data symlink the file points through), so a read here never sees a torn file.
type KeySync struct {
	// From is the mounted Secret file, To sshd's private copy (mode 0600).
	From, To string
	Every    time.Duration
	Log      io.Writer
}

// Run syncs every k.Every until ctx ends.
func (k KeySync) Run(ctx context.Context) {
	tick := time.NewTicker(k.Every)
	defer tick.Stop()
	var lastErr string
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		changed, err := k.Sync()
		switch {
		case err != nil:
			// Keep the last good copy: the Secret may be recreated. Say so once.
			if err.Error() != lastErr {
				k.logf("authorized_keys not updated, the keys in use stay: %v", err)
			}
			lastErr = err.Error()
		case changed:
			lastErr = ""
		}
	}
}

// Sync copies From to To when their contents differ, and reports whether it did. Whatever
// the Secret says is followed, an empty or partly invalid file included: removing a key
// must revoke it (sshd skips lines it cannot parse; the operator reports them in the
// environment's WorkloadReady condition).
func (k KeySync) Sync() (bool, error) {
	data, err := os.ReadFile(k.From)
	if err != nil {
		return false, err
	}
	current, err := os.ReadFile(k.To)
	if err == nil && bytes.Equal(current, data) {
		return false, nil
	}
	if err := writePrivate(k.To, data); err != nil {
		return false, err
	}
	k.logf("authorized_keys changed, now in effect for new logins: %s", describeKeys(data))
	return true, nil
}

// describeKeys lists the fingerprints sshd will accept, as its VERBOSE log names them.
func describeKeys(data []byte) string {
	fps, err := access.ParseAuthorizedKeys(data)
	if err != nil {
		return err.Error()
	}
	return fmt.Sprintf("%d key(s) %s", len(fps), strings.Join(fps, " "))
}

func (k KeySync) logf(format string, args ...any) {
	if k.Log != nil {
		fmt.Fprintf(k.Log, "trainenv-entrypoint: "+format+"\n", args...)
	}
}
