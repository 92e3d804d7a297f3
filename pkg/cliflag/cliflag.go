// Package cliflag gives every ParkMesh command the same configuration rule:
// a flag set on the command line wins, else its PARKMESH_… environment
// variable, else the default.
package cliflag

import (
	"flag"
	"fmt"
	"strings"
)

// EnvName returns the environment variable for flag name: "data-dir" →
// "PARKMESH_DATA_DIR".
func EnvName(name string) string {
	return "PARKMESH_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// Parse parses args into fs, then fills every flag not given on the command
// line from its environment variable. An invalid value names the flag and
// the variable it came from.
func Parse(fs *flag.FlagSet, args []string, getenv func(string) string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if err != nil || set[f.Name] {
			return
		}
		env := EnvName(f.Name)
		if v := getenv(env); v != "" {
			if e := fs.Set(f.Name, v); e != nil {
				err = fmt.Errorf("-%s (from %s): %v", f.Name, env, e)
			}
		}
	})
	return err
}
