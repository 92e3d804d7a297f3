package cliflag

import (
	"flag"
	"io"
	"strings"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	env := map[string]string{"PARKMESH_LISTEN": "127.0.0.1:9", "PARKMESH_PARK": "from-env", "PARKMESH_WAIT": "bad"}
	newFS := func() (*flag.FlagSet, *string, *string) {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		return fs, fs.String("listen", "def", ""), fs.String("park", "def", "")
	}
	fs, listen, park := newFS()
	if err := Parse(fs, []string{"-park", "from-flag"}, func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	if *listen != "127.0.0.1:9" || *park != "from-flag" {
		t.Errorf("listen=%q park=%q", *listen, *park)
	}
	fs = flag.NewFlagSet("t", flag.ContinueOnError)
	fs.Duration("wait", time.Second, "")
	err := Parse(fs, nil, func(k string) string { return env[k] })
	if err == nil || !strings.Contains(err.Error(), "-wait") || !strings.Contains(err.Error(), "PARKMESH_WAIT") {
		t.Errorf("bad env value: err = %v, want one naming -wait and PARKMESH_WAIT", err)
	}
}
