// Command probe is the container health check of the ParkMesh images. The
// images are built FROM scratch, so they hold no shell, curl or wget; probe
// is the one tool a HEALTHCHECK (docker compose) can run inside them:
//
//	probe http://127.0.0.1:7101/readyz
//
// It exits 0 when every URL answers 2xx within the timeout, 1 otherwise,
// and prints why on stderr (docker keeps it in `docker inspect`).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

func main() { os.Exit(run(os.Args[1:], os.Stderr)) }

func run(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("probe", flag.ContinueOnError)
	fs.SetOutput(stderr)
	timeout := fs.Duration("timeout", 3*time.Second, "deadline for each URL")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: probe [-timeout 3s] URL...\nexits 0 when every URL answers 2xx")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() == 0 || *timeout <= 0 {
		fs.Usage()
		return 2
	}
	client := &http.Client{Timeout: *timeout}
	for _, u := range fs.Args() {
		if err := check(client, u); err != nil {
			fmt.Fprintf(stderr, "probe: %v\n", err)
			return 1
		}
	}
	return 0
}

func check(client *http.Client, url string) error {
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	res, err := client.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	// Read a little so the server sees a complete exchange, not a reset.
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10))
	if res.StatusCode < 200 || res.StatusCode > 299 {
		return fmt.Errorf("%s: %s", url, res.Status)
	}
	return nil
}
