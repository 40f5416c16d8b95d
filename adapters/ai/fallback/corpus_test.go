package fallback_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigilhq/vigil/adapters/ai/fallback"
	"github.com/vigilhq/vigil/adapters/render"
	"github.com/vigilhq/vigil/adapters/source"
	"github.com/vigilhq/vigil/domain/ai"
	"github.com/vigilhq/vigil/domain/monitor"
)

// corpusCase is one saved page of testdata/corpus and what a user's prompt must read
// from it.
type corpusCase struct {
	File     string  `json:"file"`
	Prompt   string  `json:"prompt"`
	Selector string  `json:"selector"` // the user's, for the main fact
	Format   string  `json:"format"`   // the monitor's source_format
	Render   bool    `json:"render"`   // read in the browser, for a page drawn by scripts
	Fact     string  `json:"fact"`
	Want     any     `json:"want"`  // a number, a boolean or a string
	Where    string  `json:"where"` // the locator, when the case pins it
	MinConf  float64 `json:"min_confidence"`
}

func loadCorpus(t testing.TB) []corpusCase {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "corpus.json"))
	require.NoError(t, err)
	var cases []corpusCase
	require.NoError(t, json.Unmarshal(data, &cases))
	return cases
}

// corpusServer serves the saved pages with the media types their sites send.
func corpusServer(t testing.TB) *httptest.Server {
	t.Helper()
	types := map[string]string{".html": "text/html; charset=utf-8", ".json": "application/json", ".rss": "application/rss+xml",
		".atom": "application/atom+xml", ".txt": "text/plain; charset=utf-8"}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := filepath.Base(r.URL.Path)
		body, err := os.ReadFile(filepath.Join("testdata", "corpus", name))
		if err != nil {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", types[filepath.Ext(name)])
		w.Write(body) //nolint:errcheck // the test reads what arrives
	}))
	t.Cleanup(srv.Close)
	return srv
}

// specFor classifies the case's prompt with the rules, as a user without an AI key gets
// it, with the case's selector given as the user's.
func specFor(t testing.TB, p *fallback.Provider, c corpusCase, sourceURL string) monitor.Spec {
	t.Helper()
	spec, _, err := p.Classify(context.Background(), c.Prompt, ai.Hints{SourceURL: sourceURL})
	require.NoError(t, err, "%s: classify %q", c.File, c.Prompt)
	if c.Selector != "" {
		require.NoError(t, fallback.CheckSelector("selector", c.Selector))
		spec, err = spec.WithSelectors(map[string]string{monitor.SelectorPrimary: c.Selector})
		require.NoError(t, err)
	}
	return spec
}

// TestCorpus reads every saved page through the real fetcher and the rules, as validate
// and the evaluator do, and checks the value, that it is trusted (its evidence is in the
// page) and, where the case says, where it was found.
func TestCorpus(t *testing.T) {
	t.Parallel()
	cases := loadCorpus(t)
	require.GreaterOrEqual(t, len(cases), 30, "the corpus must hold at least 30 pages")
	srv := corpusServer(t)
	fetcher := source.New(source.Config{AllowPrivate: true, Fresh: -1}, time.Now)
	p := fallback.New(time.Now)
	chromium, err := render.Find(os.Getenv("VIGIL_CHROMIUM"))
	require.NoError(t, err, "no Chromium: run `make test`, which installs Debian's chromium, or set VIGIL_CHROMIUM")
	browser, err := render.New(render.Config{ExecPath: chromium, AllowPrivate: true, Timeout: 30 * time.Second}, time.Now)
	require.NoError(t, err)
	t.Cleanup(browser.Close)
	for _, c := range cases {
		t.Run(c.File, func(t *testing.T) {
			t.Parallel()
			url := srv.URL + "/" + c.File
			spec := specFor(t, p, c, url)
			var from interface {
				Fetch(context.Context, string) (ai.Document, error)
			} = fetcher
			if c.Render {
				from = browser
				plain, err := fetcher.Fetch(context.Background(), url)
				require.NoError(t, err)
				_, _, err = p.Extract(context.Background(), spec, plain)
				require.Error(t, err, "the page must need its scripts: without them the %s is not there", c.Fact)
			}
			doc, err := from.Fetch(context.Background(), url)
			require.NoError(t, err)
			doc.Format = c.Format
			facts, _, err := p.Extract(context.Background(), spec, doc)
			require.NoError(t, err, "spec %+v", spec.Facts)
			var got *monitor.Fact
			for i := range facts {
				if facts[i].Key == c.Fact {
					got = &facts[i]
				}
			}
			require.NotNil(t, got, "no fact %q among %+v", c.Fact, facts)
			switch want := c.Want.(type) {
			case float64:
				require.NotNil(t, got.Number, "%s is not a number: %+v", c.Fact, got)
				require.InDelta(t, want, *got.Number, 1e-9)
			case bool:
				require.NotNil(t, got.Bool, "%s is not a boolean: %+v", c.Fact, got)
				require.Equal(t, want, *got.Bool)
			case string:
				require.NotNil(t, got.Text, "%s is not a text: %+v", c.Fact, got)
				require.Equal(t, want, *got.Text)
			}
			if c.Where != "" {
				require.Equal(t, c.Where, got.Locator)
			}
			require.Empty(t, monitor.Untrusted(facts, monitor.MinConfidenceDefault, string(doc.Body), doc.Text),
				"the value must be trusted: evidence %q, confidence %v", got.Evidence, got.Confidence)
			if c.Selector != "" {
				require.InDelta(t, 1, got.Confidence, 1e-9, "a user's selector is exact")
			}
		})
	}
}

// BenchmarkExtractCorpus measures extraction per page over the corpus (classification and
// fetching left out): go test -bench ExtractCorpus ./adapters/ai/fallback/.
func BenchmarkExtractCorpus(b *testing.B) {
	cases := loadCorpus(b)
	srv := corpusServer(b)
	fetcher := source.New(source.Config{AllowPrivate: true}, time.Now)
	p := fallback.New(time.Now)
	type job struct {
		spec monitor.Spec
		doc  ai.Document
	}
	jobs := make([]job, 0, len(cases))
	for _, c := range cases {
		if c.Render {
			continue // what the browser rendered is read as any page; rendering is BenchmarkRender's
		}
		url := srv.URL + "/" + c.File
		doc, err := fetcher.Fetch(context.Background(), url)
		require.NoError(b, err)
		doc.Format = c.Format
		jobs = append(jobs, job{specFor(b, p, c, url), doc})
	}
	b.ResetTimer()
	for range b.N {
		for _, j := range jobs {
			if _, _, err := p.Extract(context.Background(), j.spec, j.doc); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(jobs)), "ns/page")
}
