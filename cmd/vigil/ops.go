package main

import (
	"fmt"
	"io"
	"sort"

	"github.com/vigilhq/vigil/adapters/metrics"
)

// runOps implements `vigil ops export DIR`: the Prometheus alert rules and the Grafana
// dashboard that match this binary's metrics.
func runOps(args []string, out io.Writer) error {
	if len(args) != 2 || args[0] != "export" {
		return fmt.Errorf("usage: vigil ops export DIR")
	}
	written, err := metrics.WriteOps(args[1])
	if err != nil {
		return err
	}
	sort.Strings(written)
	for _, p := range written {
		fmt.Fprintln(out, "ops: wrote", p)
	}
	return nil
}
