package monitor_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigilhq/vigil/domain"
	"github.com/vigilhq/vigil/domain/monitor"
)

func TestWithSelectors(t *testing.T) {
	t.Parallel()
	spec := monitor.Spec{Kind: monitor.KindCurrentState, Condition: "price < 80 && in_stock",
		Facts: []monitor.FactSpec{{Name: "price", Type: monitor.FactNumber, Selector: "/by/classifier"}, {Name: "in_stock", Type: monitor.FactBoolean}}}

	got, err := spec.WithSelectors(map[string]string{monitor.SelectorPrimary: " span.price ", "in_stock": "text:In stock"})
	require.NoError(t, err)
	require.Equal(t, "span.price", got.Facts[0].Selector)
	require.Equal(t, monitor.SelectorByUser, got.Facts[0].SelectorBy)
	require.Equal(t, "text:In stock", got.Facts[1].Selector)
	require.Equal(t, map[string]string{"price": "span.price", "in_stock": "text:In stock"}, got.UserSelectors())
	require.Equal(t, "/by/classifier", spec.Facts[0].Selector, "the spec it came from is unchanged")

	// New selectors replace the user's; the classifier's stay where the user gives none.
	again, err := got.WithSelectors(map[string]string{"in_stock": "#stock"})
	require.NoError(t, err)
	require.Empty(t, again.Facts[0].Selector)
	require.Equal(t, map[string]string{"in_stock": "#stock"}, again.UserSelectors())
	cleared, err := got.WithSelectors(map[string]string{})
	require.NoError(t, err)
	require.Empty(t, cleared.UserSelectors())

	_, err = spec.WithSelectors(map[string]string{"weight": ".w"})
	require.Equal(t, domain.EINVALID, domain.ErrorCode(err))
	var de *domain.Error
	require.ErrorAs(t, err, &de)
	require.Equal(t, "names no fact of this monitor; its facts are: price, in_stock", de.Fields["selector.weight"])

	// The primary fact of a change rule is the one it follows.
	change := monitor.Spec{Kind: monitor.KindHistoricalChange, Change: &monitor.ChangeRule{Fact: "rate"},
		Facts: []monitor.FactSpec{{Name: "volume"}, {Name: "rate"}}}
	got, err = change.WithSelectors(map[string]string{monitor.SelectorPrimary: "/rate"})
	require.NoError(t, err)
	require.Equal(t, map[string]string{"rate": "/rate"}, got.UserSelectors())

	// A new classification keeps the user's selectors of the facts it still has.
	fresh := monitor.Spec{Facts: []monitor.FactSpec{{Name: "price", Selector: "/new"}, {Name: "stock"}}}
	old, err := spec.WithSelectors(map[string]string{"price": "b.p", "in_stock": "#s"})
	require.NoError(t, err)
	kept := fresh.KeepUserSelectors(old)
	require.Equal(t, map[string]string{"price": "b.p"}, kept.UserSelectors())
	require.Equal(t, "/new", fresh.Facts[0].Selector)
}

func TestEditSelectorsAndFormat(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	spec := monitor.Spec{Kind: monitor.KindCurrentState, Condition: "price < 80", Facts: []monitor.FactSpec{{Name: "price", Type: monitor.FactNumber}}}
	m := monitor.New("m1", monitor.Draft{UserID: "u1", Prompt: "price below 80", SourceURL: "https://x.example", Interval: time.Hour,
		Selectors: map[string]string{"price": "#p"}}, spec, monitor.ClassifiedBy{}, now.Add(-time.Hour))
	require.Equal(t, monitor.FormatAuto, m.SourceFormat)
	m.NextRunAt = now.Add(time.Hour)

	format := monitor.FormatHTML
	sel := map[string]string{"": "span.price"}
	c := monitor.Changes{SourceFormat: &format, Selectors: &sel}
	d := m.Draft(c)
	require.NoError(t, d.Validate(time.Minute))
	e, err := m.Edit(d, c, nil, monitor.ClassifiedBy{}, now)
	require.NoError(t, err)
	require.True(t, e.RunNow, "reading the source another way runs at once")
	require.False(t, e.ResetState, "a selector fix keeps the state")
	require.Equal(t, monitor.FormatHTML, m.SourceFormat)
	require.Equal(t, map[string]string{"price": "span.price"}, m.Spec.UserSelectors())

	// A new classification keeps the selector.
	prompt := "price below 70"
	c = monitor.Changes{Prompt: &prompt}
	next := monitor.Spec{Kind: monitor.KindCurrentState, Condition: "price < 70", Facts: []monitor.FactSpec{{Name: "price", Type: monitor.FactNumber}}}
	_, err = m.Edit(m.Draft(c), c, &next, monitor.ClassifiedBy{}, now)
	require.NoError(t, err)
	require.Equal(t, "price < 70", m.Spec.Condition)
	require.Equal(t, map[string]string{"price": "span.price"}, m.Spec.UserSelectors())

	bad := monitor.SourceFormat("pdf")
	d = m.Draft(monitor.Changes{SourceFormat: &bad})
	var de *domain.Error
	require.ErrorAs(t, d.Validate(time.Minute), &de)
	require.Contains(t, de.Fields["source_format"], "auto, json, html, text, rss")
}
