package metrics

import (
	"embed"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// ops holds what operators load beside the metrics: Prometheus alert rules
// (ops/alerts.yaml) and a Grafana dashboard (ops/dashboard.json, whose shape
// ops/dashboard.schema.json describes). They ship inside the binary, so they always match
// the metrics it exports.
//
//go:embed ops/alerts.yaml ops/dashboard.json
var ops embed.FS

// OpsFiles returns the names and contents of the alert rules and the dashboard.
func OpsFiles() (map[string][]byte, error) {
	out := map[string][]byte{}
	err := fs.WalkDir(ops, "ops", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := ops.ReadFile(path)
		if err != nil {
			return err
		}
		out[filepath.Base(path)] = b
		return nil
	})
	return out, err
}

// WriteOps writes the alert rules and the dashboard into dir, creating it, and returns the
// paths written.
func WriteOps(dir string) ([]string, error) {
	files, err := OpsFiles()
	if err != nil {
		return nil, fmt.Errorf("ops files: %w", err)
	}
	if err := os.MkdirAll(filepath.Clean(dir), 0o750); err != nil {
		return nil, fmt.Errorf("create %s: %w", dir, err)
	}
	var written []string
	for name, b := range files {
		path := filepath.Join(filepath.Clean(dir), name)
		if err := os.WriteFile(path, b, 0o600); err != nil {
			return written, fmt.Errorf("write %s: %w", path, err)
		}
		written = append(written, path)
	}
	return written, nil
}
