// Command talent runs a park's talent service. See README.md for flags.
package main

import (
	"os"

	"github.com/parkmesh/parkmesh/services/listingservice"
	"github.com/parkmesh/parkmesh/services/talent"
)

func main() { os.Exit(listingservice.Run(talent.Spec, os.Args[1:])) }
