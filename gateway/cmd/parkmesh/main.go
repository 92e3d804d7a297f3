// Command parkmesh is the ParkMesh admin CLI: park keys and park-local
// tokens. The commands live in package gateway/admin.
package main

import (
	"io"
	"os"
	"time"

	"github.com/parkmesh/parkmesh/gateway/admin"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run runs the CLI with the process's environment and clock.
func run(args []string, stdout, stderr io.Writer) int {
	cli := &admin.CLI{Stdout: stdout, Stderr: stderr, Stdin: os.Stdin, Getenv: os.Getenv, Now: time.Now}
	return cli.Run(args)
}
