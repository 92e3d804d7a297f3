// Command gateway runs a park's federation gateway. See README.md for flags.
package main

import (
	"os"

	"github.com/parkmesh/parkmesh/gateway/app"
)

func main() { os.Exit(app.Run(os.Args[1:])) }
