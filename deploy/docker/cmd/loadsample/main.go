// Command loadsample loads a park's sample listings (deploy/local/sample)
// into a running node through its gateway, for the docker compose demo and
// the Tiltfile's sample-data resource:
//
//	loadsample -park xian-hitech -gateway http://127.0.0.1:8080 -data-dir DIR
//
// It waits until the gateway is ready and sees an instance of every
// service, and does nothing when the park already holds listings (-force
// loads anyway), so it can run at every start. The editor token comes from
// -token, or is minted for ten minutes from the park key in -data-dir, as
// the admin CLI does. Each flag falls back to its PARKMESH_<FLAG> variable.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/parkmesh/parkmesh/deploy/local/sample"
	"github.com/parkmesh/parkmesh/pkg/apierror"
	"github.com/parkmesh/parkmesh/pkg/cliflag"
	"github.com/parkmesh/parkmesh/pkg/listing"
	"github.com/parkmesh/parkmesh/pkg/parkkey"
	"github.com/parkmesh/parkmesh/pkg/parktoken"
)

type config struct {
	park, gateway, token, dataDir string
	wait                          time.Duration
	force                         bool
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	var c config
	fs := flag.NewFlagSet("loadsample", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.park, "park", "", "the park whose sample data to load (its id)")
	fs.StringVar(&c.gateway, "gateway", "http://127.0.0.1:8080", "the park's gateway")
	fs.StringVar(&c.token, "token", "", "a park-local editor token; or give -data-dir")
	fs.StringVar(&c.dataDir, "data-dir", "", "the gateway's data directory (its keys/ sign a short editor token)")
	fs.DurationVar(&c.wait, "wait", 2*time.Minute, "how long to wait for the gateway and the services")
	fs.BoolVar(&c.force, "force", false, "load even when the park already holds listings")
	if err := cliflag.Parse(fs, args, getenv); err != nil {
		return 2
	}
	if c.park == "" || (c.token == "" && c.dataDir == "") || c.wait <= 0 {
		fmt.Fprintln(stderr, "loadsample: -park and one of -token or -data-dir are required (or PARKMESH_PARK, PARKMESH_TOKEN, PARKMESH_DATA_DIR)")
		fs.PrintDefaults()
		return 2
	}
	n, err := load(ctx, c, http.DefaultClient, time.Now, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "loadsample: %v\n", err)
		return 1
	}
	fmt.Fprintln(stdout, n)
	return 0
}

// load loads c.park's sample file and returns how many listings it created.
func load(ctx context.Context, c config, client *http.Client, now func() time.Time, log io.Writer) (int, error) {
	f, err := sample.Load(c.park)
	if err != nil {
		return 0, err
	}
	tok := c.token
	if tok == "" {
		ks, err := parkkey.Load(c.dataDir)
		if err != nil {
			return 0, fmt.Errorf("-data-dir: %w", err)
		}
		if ks.Park() != c.park {
			return 0, fmt.Errorf("-park %q: the keys in %s belong to park %q", c.park, c.dataDir, ks.Park())
		}
		if tok, err = parktoken.Issue(ks, ks.Park(), "parkmesh-loadsample", parktoken.Editor, 10*time.Minute, now()); err != nil {
			return 0, err
		}
	}
	gw := strings.TrimRight(c.gateway, "/")
	if err := waitReady(ctx, client, gw, c.wait); err != nil {
		return 0, err
	}
	auth := http.Header{"Authorization": {"Bearer " + tok}}
	if !c.force {
		for _, k := range listing.Kinds {
			has, err := hasListings(ctx, client, gw+"/api/v1/"+k.Collection(), auth)
			if err != nil {
				return 0, err
			}
			if has {
				fmt.Fprintf(log, "loadsample: %s already holds %s listings; nothing loaded (-force loads anyway)\n", c.park, k)
				return 0, nil
			}
		}
	}
	n, err := f.Post(ctx, client, func(k listing.Kind) string { return gw + "/api/v1/" + k.Collection() }, auth)
	if err != nil {
		return n, err
	}
	fmt.Fprintf(log, "loadsample: loaded %d sample listings into %s\n", n, c.park)
	return n, nil
}

// waitReady polls the gateway's /readyz until it is ready and reports an
// instance of every service (its readiness does not wait for them).
func waitReady(ctx context.Context, client *http.Client, gw string, wait time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	var last error
	for {
		if last = readyOnce(ctx, client, gw); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("gateway %s not ready after %s: %w", gw, wait, last)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func readyOnce(ctx context.Context, client *http.Client, gw string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, gw+"/readyz", nil)
	if err != nil {
		return err
	}
	res, err := client.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	var body struct {
		Instances map[string]int `json:"instances"`
	}
	if err := json.NewDecoder(io.LimitReader(res.Body, 1<<20)).Decode(&body); err != nil && res.StatusCode == http.StatusOK {
		return fmt.Errorf("/readyz: %w", err)
	}
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("/readyz: %s", res.Status)
	}
	for _, k := range listing.Kinds {
		if body.Instances[string(k)] < 1 {
			return fmt.Errorf("no %s service instance in Consul yet", k)
		}
	}
	return nil
}

func hasListings(ctx context.Context, client *http.Client, url string, h http.Header) (bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"?limit=1", nil)
	if err != nil {
		return false, err
	}
	req.Header = h.Clone()
	res, err := client.Do(req)
	if err != nil {
		return false, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return false, fmt.Errorf("GET %s: %w", url, apierror.Read(res.StatusCode, res.Body))
	}
	var page struct {
		Results []json.RawMessage `json:"results"`
	}
	if err := json.NewDecoder(io.LimitReader(res.Body, 4<<20)).Decode(&page); err != nil {
		return false, errors.New("GET " + url + ": " + err.Error())
	}
	return len(page.Results) > 0, nil
}
