// Package archive writes facts partitions to a directory as gzip NDJSON with a manifest,
// before retention drops them.
package archive

import (
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/vigilhq/vigil/domain/app"
)

// Dir archives into a directory.
type Dir struct {
	path string
	now  func() time.Time
}

var _ app.Archiver = (*Dir)(nil)

// New returns a Dir writing into path, which it creates when missing.
func New(path string, now func() time.Time) (*Dir, error) {
	if err := os.MkdirAll(path, 0o750); err != nil {
		return nil, fmt.Errorf("archive directory %s: %w", path, err)
	}
	return &Dir{path: path, now: now}, nil
}

// Archive implements app.Archiver: <partition>.ndjson.gz, one fact per line, and
// <partition>.manifest.json with its row count and SHA-256. Both are written to temporary
// files, synced and renamed, so an archive that exists is complete; a failure leaves
// nothing behind, and the partition is then kept.
func (d *Dir) Archive(ctx context.Context, p app.Partition, facts func(emit func(app.ArchivedFact) error) error) (app.ArchiveManifest, error) {
	m := app.ArchiveManifest{Partition: p.Name, From: p.From, To: p.To, File: p.Name + ".ndjson.gz", CreatedAt: d.now().UTC()}
	final := filepath.Join(d.path, m.File)
	tmp, err := os.CreateTemp(d.path, p.Name+".*.tmp")
	if err != nil {
		return m, fmt.Errorf("archive %s: %w", p.Name, err)
	}
	defer func() { _ = os.Remove(tmp.Name()) }() // a no-op once renamed
	sum := sha256.New()
	gz := gzip.NewWriter(io.MultiWriter(tmp, sum))
	enc := json.NewEncoder(gz)
	err = facts(func(f app.ArchivedFact) error {
		m.Rows++
		return enc.Encode(f)
	})
	if err == nil {
		err = gz.Close()
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		return m, fmt.Errorf("archive %s: %w", p.Name, err)
	}
	m.SHA256 = hex.EncodeToString(sum.Sum(nil))
	if err := os.Rename(tmp.Name(), final); err != nil {
		return m, fmt.Errorf("archive %s: %w", p.Name, err)
	}
	manifest, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return m, fmt.Errorf("archive %s manifest: %w", p.Name, err)
	}
	if err := writeAtomic(filepath.Join(d.path, p.Name+".manifest.json"), manifest); err != nil {
		return m, fmt.Errorf("archive %s manifest: %w", p.Name, err)
	}
	return m, nil
}

func writeAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
