// Command directory runs a park's directory service. See README.md for flags.
package main

import (
	"os"

	"github.com/parkmesh/parkmesh/pkg/parkservice"
	"github.com/parkmesh/parkmesh/services/directory"
)

func main() { os.Exit(parkservice.Run(directory.Spec, os.Args[1:])) }
