// Command directory runs a park's directory service. See README.md for flags.
package main

import (
	"os"

	"github.com/parkmesh/parkmesh/services/directory"
	"github.com/parkmesh/parkmesh/services/listingservice"
)

func main() { os.Exit(listingservice.Run(directory.Spec, os.Args[1:])) }
