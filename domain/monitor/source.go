package monitor

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/vigilhq/vigil/domain"
)

// SourceFormat says how a monitor's source is read; auto decides from its media type and
// its first bytes.
type SourceFormat string

// Source formats.
const (
	FormatAuto SourceFormat = "auto"
	FormatJSON SourceFormat = "json"
	FormatHTML SourceFormat = "html"
	FormatText SourceFormat = "text"
	FormatRSS  SourceFormat = "rss" // RSS and Atom feeds
)

// SourceFormats lists the formats, for messages and the API's schema.
var SourceFormats = []SourceFormat{FormatAuto, FormatJSON, FormatHTML, FormatText, FormatRSS}

// Valid reports a known format; "" is auto.
func (f SourceFormat) Valid() bool { return f == "" || slices.Contains(SourceFormats, f) }

// OrAuto is the format with "" read as auto.
func (f SourceFormat) OrAuto() SourceFormat {
	if f == "" {
		return FormatAuto
	}
	return f
}

// Limits on selectors.
const (
	SelectorsMax = 20
	// SelectorPrimary keys the selector of a monitor's main fact, for a user who gives one
	// selector without naming the fact.
	SelectorPrimary = ""
	// SelectorByUser marks a selector the user gave: it survives a new classification of
	// the prompt, and nothing replaces it without the user.
	SelectorByUser = "user"
)

// PrimaryFact is the fact a monitor is mainly about: the one its change rule follows, or
// its first fact.
func (s Spec) PrimaryFact() string {
	if s.Change != nil && s.Change.Fact != "" {
		return s.Change.Fact
	}
	if len(s.Facts) > 0 {
		return s.Facts[0].Name
	}
	return ""
}

// UserSelectors returns the selectors the user gave, by fact name.
func (s Spec) UserSelectors() map[string]string {
	out := map[string]string{}
	for _, f := range s.Facts {
		if f.SelectorBy == SelectorByUser && f.Selector != "" {
			out[f.Name] = f.Selector
		}
	}
	return out
}

// WithSelectors returns the spec with the user's selectors, by fact name (SelectorPrimary
// for the main fact), in place of those the user gave before; the facts keep the
// classification's selectors otherwise. Naming a fact the spec does not have is EINVALID
// listing the facts it has.
func (s Spec) WithSelectors(selectors map[string]string) (Spec, error) {
	out := s
	out.Facts = slices.Clone(s.Facts)
	for i := range out.Facts {
		if out.Facts[i].SelectorBy == SelectorByUser {
			out.Facts[i].Selector, out.Facts[i].SelectorBy = "", ""
		}
	}
	names := make([]string, 0, len(selectors))
	for name := range selectors {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		sel := strings.TrimSpace(selectors[name])
		field := "selector"
		if name != SelectorPrimary {
			field = "selector." + name
		} else {
			name = s.PrimaryFact()
		}
		i := slices.IndexFunc(out.Facts, func(f FactSpec) bool { return f.Name == name })
		if i < 0 {
			have := make([]string, len(out.Facts))
			for j, f := range out.Facts {
				have[j] = f.Name
			}
			return s, &domain.Error{Code: domain.EINVALID, Message: "The selector names a fact this monitor does not extract.",
				Fields: map[string]string{field: fmt.Sprintf("names no fact of this monitor; its facts are: %s", strings.Join(have, ", "))}}
		}
		if sel != "" {
			out.Facts[i].Selector, out.Facts[i].SelectorBy = sel, SelectorByUser
		}
	}
	return out, nil
}

// KeepUserSelectors returns the spec, a new classification, with the selectors the user
// gave in old for the facts both have.
func (s Spec) KeepUserSelectors(old Spec) Spec {
	keep := old.UserSelectors()
	if len(keep) == 0 {
		return s
	}
	out := s
	out.Facts = slices.Clone(s.Facts)
	for i, f := range out.Facts {
		if sel, ok := keep[f.Name]; ok {
			out.Facts[i].Selector, out.Facts[i].SelectorBy = sel, SelectorByUser
		}
	}
	return out
}

// validateSelectors checks the shape of a draft's selectors; their syntax is the
// extraction's to check.
func validateSelectors(selectors map[string]string, fields map[string]string) {
	if len(selectors) > SelectorsMax {
		fields["selector"] = fmt.Sprintf("must name at most %d facts", SelectorsMax)
		return
	}
	for name := range selectors {
		if name != SelectorPrimary && (len(name) > 64 || strings.TrimSpace(name) != name || name == "") {
			fields["selector"] = "must map fact names to selectors"
			return
		}
	}
}
