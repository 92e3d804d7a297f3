// Command project runs a park's project service. See README.md for flags.
package main

import (
	"os"

	"github.com/parkmesh/parkmesh/services/listingservice"
	"github.com/parkmesh/parkmesh/services/project"
)

func main() { os.Exit(listingservice.Run(project.Spec, os.Args[1:])) }
