package local

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// PortalUser is the account the demo makes in every park for the portal.
const PortalUser = "admin"

// portalPasswordFile is where the demo keeps its portal password: the
// file `parkmesh init` writes for a real park's first admin.
func portalPasswordFile(dataDir string) string {
	return filepath.Join(dataDir, "initial-admin-password")
}

// ensurePortalAccount gives the park an admin account for the portal, as
// `parkmesh init` does on a real host: a random password in
// <data-dir>/initial-admin-password (0600), the account added with the
// admin CLI (`parkmesh user add`, reading the password from that file).
// A second run keeps both. It returns the password file.
func ensurePortalAccount(ctx context.Context, root, dataDir string) (string, error) {
	path := portalPasswordFile(dataDir)
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	b := make([]byte, 15)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	tmp := path + ".new"
	if err := os.WriteFile(tmp, []byte(base64.RawURLEncoding.EncodeToString(b)+"\n"), 0o600); err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, filepath.Join(root, "bin", "parkmesh"), "user", "add",
		"--username", PortalUser, "--role", "admin", "--display-name", "Demo admin",
		"--password-file", tmp, "--data-dir", dataDir)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("parkmesh user add: %v: %s", err, strings.TrimSpace(stderr.String()))
	}
	// Renamed only once the account holds it: a file names a password
	// that works, or there is none and the next run tries again.
	return path, errors.Join(os.Rename(tmp, path))
}
