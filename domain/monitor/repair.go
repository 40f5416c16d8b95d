package monitor

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vigilhq/vigil/domain"
)

// SelectorByRepair marks a selector Vigil put in place of one that stopped finding its
// fact, after checking it reads the fact's last good value on the changed page.
const SelectorByRepair = "repair"

// ExtractionMissesDefault is how many evaluations in a row may miss a fact found before,
// on a source that changed, before the owner is told.
const ExtractionMissesDefault = 3

// SnippetMaxRunes caps the page text a miss keeps to show where the value went.
const SnippetMaxRunes = 500

// Exact reports a selector to be read as given, without a model: the user's own, or a
// verified repair.
func (f FactSpec) Exact() bool {
	return f.Selector != "" && (f.SelectorBy == SelectorByUser || f.SelectorBy == SelectorByRepair)
}

// Fact returns the spec of the named fact.
func (s Spec) Fact(name string) (FactSpec, bool) {
	i := slices.IndexFunc(s.Facts, func(f FactSpec) bool { return f.Name == name })
	if i < 0 {
		return FactSpec{}, false
	}
	return s.Facts[i], true
}

// WithRepairedSelector returns the spec with selector in place of the named fact's.
func (s Spec) WithRepairedSelector(fact, selector string) (Spec, error) {
	i := slices.IndexFunc(s.Facts, func(f FactSpec) bool { return f.Name == fact })
	if i < 0 {
		return s, &domain.Error{Code: domain.EINVALID, Message: fmt.Sprintf("The monitor has no fact %q to repair.", fact)}
	}
	out := s
	out.Facts = slices.Clone(s.Facts)
	out.Facts[i].Selector, out.Facts[i].SelectorBy = strings.TrimSpace(selector), SelectorByRepair
	return out, nil
}

// Miss is an evaluation that did not find a fact the evaluation before it found, on a
// source whose content changed since: most often the page's markup moved.
type Miss struct {
	Fact     string `json:"fact"`
	Selector string `json:"selector,omitempty"` // the fact's selector that found nothing
	LastGood Fact   `json:"last_good"`          // the fact as last found, with its evidence
	// Snippet is the start of the changed page's text, to show where the value went.
	Snippet string `json:"snippet"`
}

// Repair is a selector suggested for a fact that is no longer found, with what checking
// it showed. Only a verified repair is ever applied.
type Repair struct {
	Fact     string `json:"fact"`
	Old      string `json:"old_selector,omitempty"`
	Selector string `json:"selector"`
	// Found is what the suggested selector reads on the current page; "" when nothing.
	Found string `json:"found,omitempty"`
	// Expected is the last good value the selector had to reproduce.
	Expected string `json:"expected"`
	Verified bool   `json:"verified"`
	Applied  bool   `json:"applied"`
	// Reason says why a repair was not applied.
	Reason   string    `json:"reason,omitempty"`
	Provider string    `json:"provider,omitempty"`
	At       time.Time `json:"at"`
}

// VerifyRepair judges a suggested selector: it is verified only when what it reads on the
// current page (found; nil when it read nothing) is the last good value, in the same unit.
// A selector that reads another value is never applied: the page may show a new price, but
// Vigil cannot tell a new price from the wrong element.
func VerifyRepair(lastGood Fact, found *Fact) (bool, string) {
	if found == nil {
		return false, "The suggested selector finds nothing on the page."
	}
	if lastGood.Unit != "" && found.Unit != "" && !strings.EqualFold(lastGood.Unit, found.Unit) {
		return false, fmt.Sprintf("The suggested selector reads %s, in another unit than the last good %s.", FactValue(*found), FactValue(lastGood))
	}
	if !SameValue(lastGood, *found) {
		return false, fmt.Sprintf("The suggested selector reads %s, not the last good value %s.", FactValue(*found), FactValue(lastGood))
	}
	return true, ""
}

// SameValue reports two facts holding the same value: numbers equal to a part in a
// billion, texts equal once trimmed, booleans equal.
func SameValue(a, b Fact) bool {
	switch {
	case a.Number != nil && b.Number != nil:
		x, y := *a.Number, *b.Number
		return math.Abs(x-y) <= 1e-9*max(math.Abs(x), math.Abs(y), 1)
	case a.Text != nil && b.Text != nil:
		return strings.TrimSpace(*a.Text) == strings.TrimSpace(*b.Text)
	case a.Bool != nil && b.Bool != nil:
		return *a.Bool == *b.Bool
	}
	return false
}

// FactValue writes a fact's value for people: "120 USD", "\"In stock\"", "true".
func FactValue(f Fact) string {
	var v string
	switch {
	case f.Number != nil:
		v = strconv.FormatFloat(*f.Number, 'f', -1, 64)
	case f.Text != nil:
		v = strconv.Quote(*f.Text)
	case f.Bool != nil:
		v = strconv.FormatBool(*f.Bool)
	default:
		return "nothing"
	}
	if f.Unit != "" {
		v += " " + f.Unit
	}
	return v
}

// Snippet returns the start of a page's text, on one line, at most SnippetMaxRunes long.
func Snippet(text string) string {
	s := strings.Join(strings.Fields(text), " ")
	if r := []rune(s); len(r) > SnippetMaxRunes {
		s = string(r[:SnippetMaxRunes-1]) + "…"
	}
	return s
}
