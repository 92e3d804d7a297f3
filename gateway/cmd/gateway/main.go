// Command gateway runs a park's federation gateway. See README.md for flags.
package main

import (
	"os"

	"github.com/parkmesh/parkmesh/gateway"
)

func main() { os.Exit(gateway.Run(os.Args[1:])) }
