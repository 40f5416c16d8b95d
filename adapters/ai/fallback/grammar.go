package fallback

import (
	"fmt"
	"hash/fnv"
	"math"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/vigilhq/vigil/domain"
	"github.com/vigilhq/vigil/domain/monitor"
)

// maxPromptLen bounds the prompts the grammar reads; longer ones are not monitor requests.
const maxPromptLen = 2000

var (
	// containsRe finds "contains <text>" and its negations. "says", "shows" and
	// "displays" need a quote after them, so "the counter shows 100" stays a number.
	containsRe = regexp.MustCompile(`\b(?:(no longer contains|no longer mentions|no longer includes|does not contain|doesn['’]t contain|does not mention|doesn['’]t mention|does not include|doesn['’]t include|stops mentioning|anything other than|something other than|contains|mentions|includes)|(no longer says|no longer shows|does not say|doesn['’]t say|does not show|doesn['’]t show|stops saying|says|shows|displays)\s*["'“‘])`)
	// stockRe finds stock phrases; the negative ones come first.
	stockRe = regexp.MustCompile(`\b(no longer in stock|no longer available|not in stock|out of stock|sold out|back in stock|in stock|restocked|available again|becomes available|is available|are available|available to (?:buy|order)|goes on sale|go on sale)\b`)
	// changeByRe finds a change by an amount: "rises 5%", "drops by $10", "increases by
	// more than 3k". Submatches: 1 verb, then numberPattern's.
	changeByRe = regexp.MustCompile(`\b(` + changeVerbs + `)\s+(?:by\s+)?(?:(?:more than|at least|about)\s+)?` + numberPattern)
	// fractionRe finds a change by a fraction: "doubles", "drops by half", "falls by a
	// quarter". Submatches: 1 the multiplying verb, 2 the verb before a fraction, 3 the
	// fraction.
	fractionRe = regexp.MustCompile(`\b(?:(doubles|doubled|double|triples|tripled|triple|quadruples|quadruple|halves|halved|is cut in half|is halved)|(` + changeVerbs + `)\s+(?:by\s+)?(half|a half|a quarter|a third|three quarters))\b`)
	// changeVerbRe finds a change verb without an amount, to explain what is missing.
	changeVerbRe = regexp.MustCompile(`\b(increases|rises|goes up|jumps|climbs|grows|decreases|drops|falls|goes down|declines|sinks|dips|spikes|soars|surges|plunges|plummets|crashes|tanks)\b(\s+by\b)?`)
	// relativeRe finds a relative amount: "is 5% higher than a week ago", "$10 cheaper".
	// Submatches: numberPattern's, then 6 the direction.
	relativeRe = regexp.MustCompile(numberPattern + `\s+(higher|lower|more|less|up|down|cheaper|dearer|greater|smaller|bigger)\b`)
	// timeUnitRe finds a time unit right after a number: "over 24 hours" is a window.
	timeUnitRe = regexp.MustCompile(`^\s*(?:minutes?|mins?|hours?|hrs?|days?|weeks?|wks?|months?|years?)\b`)
	// windowIntroRe finds the word that introduces a window after a change amount.
	windowIntroRe = regexp.MustCompile(`^\s*(within|in|over|during|per|a|an|each|every|since|from|compared (?:with|to)|than|vs\.?|versus)\s+(.*)$`)
	// windowRe reads a window: "24 hours", "24h", "a day", "the last week", "30 days ago".
	windowRe = regexp.MustCompile(`^(?:the\s+)?(?:last\s+|past\s+|previous\s+)?(\d+(?:\.\d+)?|an?|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty-four|thirty)?\s*(minutes?|mins?|m|hours?|hrs?|h|days?|d|weeks?|wks?|w|months?|mo|years?|yrs?|y)\b(\s+ago)?`)
	// comparisonRe finds an operator followed by a number. Submatches: 1 word operator,
	// 2 symbol operator, then numberPattern's.
	comparisonRe = regexp.MustCompile(`(?:\b(less than or equal to|lower than or equal to|fewer than or equal to|greater than or equal to|more than or equal to|higher than or equal to|at or below|at or under|at or above|drops below|falls below|goes below|go below|dips below|gets below|sinks below|is below|below|under|less than|lower than|cheaper than|fewer than|smaller than|colder than|cooler than|drops to|falls to|goes down to|at most|no more than|not more than|rises above|goes above|go above|gets above|climbs above|jumps above|is above|above|over|more than|greater than|higher than|bigger than|warmer than|hotter than|exceeds|exceed|surpasses|surpass|passes|pass|tops|top|at least|no less than|not less than|rises to|goes up to|climbs to|reaches|reach|hits|hit|is not|isn['’]t|does not equal|doesn['’]t equal|is exactly|is equal to|equals|equal to|equal|is)\b|(<=|>=|==|!=|=|<|>))\s*(?:than\s+)?` + numberPattern)
	// orMoreRe finds "5 or more" / "5 or less".
	orMoreRe = regexp.MustCompile(numberPattern + `\s+or\s+(more|higher|above|greater|less|fewer|lower|below)\b`)
	// anyChangeRe finds "any change in X", "X changes", "X is updated".
	anyChangeRe = regexp.MustCompile(`\b(?:any\s+changes?\s+(?:in|to|of|on|at)\s+(.+)$|(?:any\s+changes?|changes|changed|change|is updated|gets updated|updates|is different|moves)\b)`)
	// comparisonWordRe finds a comparison word without a number, to explain what is missing.
	comparisonWordRe = regexp.MustCompile(`\b(drops below|falls below|goes below|below|under|less than|lower than|at most|rises above|goes above|above|more than|greater than|higher than|exceeds|at least|equals)\b`)
	// wordRe splits a prompt into words.
	wordRe = regexp.MustCompile(`[a-z][a-z0-9]*`)
	// quotedRe reads quoted text: "x", 'x', “x”, ‘x’.
	quotedRe = regexp.MustCompile(`^\s*(?:"([^"]+)"|'([^']+)'|“([^”]+)”|‘([^’]+)’)`)
)

// Verbs of a change, by direction; changeVerbs is all of them for the patterns, longer
// phrases first.
var (
	increaseVerbs = []string{"increases", "increase", "rises", "rise", "goes up", "go up", "jumps", "jump", "climbs", "climb", "grows", "grow",
		"gains", "gain", "is up", "spikes", "spike", "soars", "soar", "surges", "surge", "rallies", "rally", "rockets", "rocket", "skyrockets", "skyrocket"}
	decreaseVerbs = []string{"goes down", "go down", "decreases", "decrease", "drops", "drop", "falls", "fall", "declines", "decline", "sinks", "sink",
		"dips", "dip", "loses", "lose", "is down", "plunges", "plunge", "plummets", "plummet", "crashes", "crash", "tanks", "tank", "slumps", "slump",
		"tumbles", "tumble"}
	anyVerbs    = []string{"changes", "change", "moves", "move", "shifts", "shift", "swings", "swing"}
	changeVerbs = strings.Join(slices.Concat(increaseVerbs, decreaseVerbs, anyVerbs), "|")
)

// changeOperator is the change rule operator of a verb.
func changeOperator(verb string) string {
	switch {
	case slices.Contains(increaseVerbs, verb):
		return "increases"
	case slices.Contains(decreaseVerbs, verb):
		return "decreases"
	}
	return "changes"
}

// parseError is an EINVALID error for a prompt: what could not be parsed, and prompts
// that work.
func parseError(problem string) error {
	return &domain.Error{
		Code:    domain.EINVALID,
		Message: problem + " Prompts that work: “" + strings.Join(Examples, "”; “") + "”.",
		Fields:  map[string]string{"prompt": problem},
	}
}

// classify turns a prompt into a spec; see doc.go for the grammar.
func classify(prompt string) (monitor.Spec, error) {
	prompt = strings.TrimSpace(prompt)
	switch {
	case prompt == "":
		return monitor.Spec{}, parseError("The prompt is empty.")
	case len(prompt) > maxPromptLen:
		return monitor.Spec{}, parseError(fmt.Sprintf("The prompt is longer than %d characters.", maxPromptLen))
	case !utf8.ValidString(prompt):
		return monitor.Spec{}, parseError("The prompt is not valid UTF-8 text.")
	}
	// ASCII-only lower-casing keeps byte offsets equal between low and prompt, so text
	// found in low can be cut from prompt with its original case.
	low := asciiLower(prompt)
	if spec, ok, err := classifyCompound(prompt, low); ok || err != nil {
		return spec, err
	}
	return classifyOne(prompt, low)
}

// classifyOne reads a prompt of one condition.
func classifyOne(prompt, low string) (monitor.Spec, error) {
	for _, rule := range []func(prompt, low string) (monitor.Spec, bool, error){
		classifyAppears, classifyContains, classifyStock, classifyChangeBy, classifyComparison, classifyAnyChange,
	} {
		spec, ok, err := rule(prompt, low)
		if err != nil {
			return monitor.Spec{}, err
		}
		if ok {
			return spec, nil
		}
	}
	if m := comparisonWordRe.FindStringSubmatchIndex(low); m != nil {
		word, after := low[m[2]:m[3]], strings.TrimSpace(prompt[m[1]:])
		return monitor.Spec{}, parseError(fmt.Sprintf("Found %q but no number after it (%q). Write a number such as %q or %q.",
			word, clip(after, 40), word+" 80", word+" $1,200"))
	}
	if m := changeVerbRe.FindStringSubmatch(low); m != nil {
		return monitor.Spec{}, parseError(fmt.Sprintf("Found %q but not by how much. Say by how much, e.g. %q or %q, or use \"changes\" to hear about any change.",
			strings.TrimSpace(m[0]), m[1]+" by 5%", m[1]+" by $10 within 24 hours"))
	}
	return monitor.Spec{}, parseError(fmt.Sprintf("Could not find a condition in %q: expected a comparison with a number (\"below 80\", \"above $1,200\", \"at least 3k\"), a change (\"changes\", \"increases by 5%% within 24 hours\"), \"contains <text>\" or \"is back in stock\".", clip(prompt, 120)))
}

// appearsRe finds quoted text followed by a verb saying that it appears or goes:
// "'Registration open' appears", "\"Sold out\" is no longer on the page". Submatch 1 is the
// quoted text (with its quotes), 2 a verb of appearing, 3 one of going.
var appearsRe = regexp.MustCompile(`("[^"]+"|'[^']+'|“[^”]+”|‘[^’]+’)\s+(?:(?:is|are)\s+)?(?:(appears|appear|shows up|show up|is shown|are shown|is displayed|comes back|come back|is back|is there|is present|is on the page|turns up)|(disappears|disappear|is gone|are gone|goes away|go away|is removed|are removed|vanishes|vanish|no longer appears|no longer appear|no longer shows|is no longer (?:on the page|there|shown|displayed|present|visible)|isn['’]t (?:on the page|there) anymore))\b`)

// classifyAppears reads "<quoted text> appears / disappears" as a contains condition.
func classifyAppears(prompt, low string) (monitor.Spec, bool, error) {
	loc := appearsRe.FindStringSubmatchIndex(low)
	if loc == nil {
		return monitor.Spec{}, false, nil
	}
	text := quotedText(prompt[loc[2]:loc[3]])
	gone := loc[6] >= 0
	return containsSpec(text, gone), true, nil
}

// containsSpec is the condition that the page contains text, or not when negate.
func containsSpec(text string, negate bool) monitor.Spec {
	name := containsFactName(text)
	want, word := "true", "contains"
	if negate {
		want, word = "false", "does not contain"
	}
	return monitor.Spec{
		Kind:    monitor.KindCurrentState,
		Summary: fmt.Sprintf("the page %s %q", word, text),
		Facts: []monitor.FactSpec{{
			Name: name, Type: monitor.FactBoolean,
			Description: fmt.Sprintf("whether the page contains %q (case-insensitive)", text),
			Selector:    selectorText + text,
		}},
		Condition:   name + " == " + want,
		NeedsSource: true,
		Confidence:  1,
	}
}

// conjunctionRe finds "and" and "or" between two conditions.
var conjunctionRe = regexp.MustCompile(`\s(and|or|but)\s`)

// classifyCompound reads two conditions joined by "and" or "or" ("the price is below $80
// and it is in stock") as one condition over both facts. It reads only when each side is
// a condition on its own; a second side without a subject ("above 100 or below 50") is
// about the first side's fact. Two changes, or a change with a condition, are refused:
// a monitor judges one change rule.
func classifyCompound(prompt, low string) (monitor.Spec, bool, error) {
	for _, loc := range conjunctionRe.FindAllStringSubmatchIndex(low, -1) {
		if insideQuotes(low, loc[0]) {
			continue
		}
		left, right := strings.TrimSpace(prompt[:loc[0]]), strings.TrimSpace(prompt[loc[1]:])
		a, errA := classifyOne(left, asciiLower(left))
		b, errB := classifyOne(right, asciiLower(right))
		if errA != nil || errB != nil {
			continue
		}
		if a.Kind != monitor.KindCurrentState || b.Kind != monitor.KindCurrentState {
			return monitor.Spec{}, false, parseError("A monitor follows one change at a time; make one monitor for each change, or join conditions such as \"below $80 and in stock\".")
		}
		if len(b.Facts) == 1 && b.Facts[0].Name == factValue && len(a.Facts) == 1 && a.Facts[0].Type == monitor.FactNumber {
			// "above 100 or below 50": the same fact
			b.Condition = a.Facts[0].Name + strings.TrimPrefix(b.Condition, factValue)
			b.Facts, b.Warnings = a.Facts, nil
			b.Confidence = a.Confidence
		}
		op, word := " && ", " and "
		if low[loc[2]:loc[3]] == "or" {
			op, word = " || ", " or "
		}
		spec := a
		spec.Facts = slices.Clone(a.Facts)
		for _, f := range b.Facts {
			if !slices.ContainsFunc(spec.Facts, func(g monitor.FactSpec) bool { return g.Name == f.Name }) {
				spec.Facts = append(spec.Facts, f)
			}
		}
		spec.Condition = a.Condition + op + b.Condition
		spec.Summary = a.Summary + word + b.Summary
		spec.Confidence = min(a.Confidence, b.Confidence)
		spec.Warnings = slices.Concat(a.Warnings, b.Warnings)
		return spec, true, nil
	}
	return monitor.Spec{}, false, nil
}

// insideQuotes reports whether offset i of s is inside a quoted text: after an odd
// number of straight double quotes, or an opening curly quote not yet closed. Single
// straight quotes are left out: they are apostrophes as often ("it's").
func insideQuotes(s string, i int) bool {
	before := s[:i]
	return strings.Count(before, `"`)%2 == 1 || strings.Count(before, "“") > strings.Count(before, "”") ||
		strings.Count(before, "‘") > strings.Count(before, "’")
}

func classifyContains(prompt, low string) (monitor.Spec, bool, error) {
	loc := containsRe.FindStringSubmatchIndex(low)
	if loc == nil {
		return monitor.Spec{}, false, nil
	}
	verb, rest := "", ""
	if loc[2] >= 0 {
		verb, rest = low[loc[2]:loc[3]], prompt[loc[3]:]
	} else { // says/shows: the quote after the verb starts the text
		verb, rest = low[loc[4]:loc[5]], prompt[loc[5]:]
	}
	text := quotedText(rest)
	if text == "" {
		return monitor.Spec{}, false, parseError(fmt.Sprintf("Found %q but no text after it. Quote the text to look for, e.g. %s \"sold out\".", verb, verb))
	}
	negate := strings.HasPrefix(verb, "no ") || strings.HasPrefix(verb, "does") || strings.HasPrefix(verb, "stops") || strings.HasSuffix(verb, "other than")
	return containsSpec(text, negate), true, nil
}

// quotedText returns the quoted text at the start of s, else the rest of s without
// trailing punctuation and filler.
func quotedText(s string) string {
	if m := quotedRe.FindStringSubmatch(s); m != nil {
		return strings.TrimSpace(m[1] + m[2] + m[3] + m[4])
	}
	s = strings.TrimSpace(s)
	for _, suffix := range []string{" on the page", " on the site", " anywhere", " again"} {
		if strings.HasSuffix(asciiLower(s), suffix) {
			s = s[:len(s)-len(suffix)]
		}
	}
	s = strings.TrimRight(s, ".!?;, ")
	return strings.TrimSpace(strings.Trim(s, `"'“”‘’`))
}

// containsFactName is contains_<slug of text>, or contains_<hash> when the text has no
// ASCII letters or digits.
func containsFactName(text string) string {
	slug := slugify(text, 63-len("contains_"))
	if slug == "" {
		h := fnv.New32a()
		_, _ = h.Write([]byte(text))
		slug = fmt.Sprintf("text_%08x", h.Sum32())
	}
	return "contains_" + slug
}

func classifyStock(_, low string) (monitor.Spec, bool, error) {
	m := stockRe.FindStringSubmatch(low)
	if m == nil || firstComparison(low) != nil {
		return monitor.Spec{}, false, nil // "fewer than 3 left in stock" is a count
	}
	want, summary := "true", "the item is in stock"
	switch m[1] {
	case "no longer in stock", "no longer available", "not in stock", "out of stock", "sold out", "unavailable":
		want, summary = "false", "the item is out of stock"
	}
	return monitor.Spec{
		Kind:    monitor.KindCurrentState,
		Summary: summary,
		Facts: []monitor.FactSpec{{
			Name: factInStock, Type: monitor.FactBoolean,
			Description: "whether the item can be bought now (schema.org availability, in-stock or out-of-stock wording, an add-to-cart button)",
		}},
		Condition:   factInStock + " == " + want,
		NeedsSource: true,
		Confidence:  1,
	}, true, nil
}

func classifyChangeBy(_, low string) (monitor.Spec, bool, error) {
	var (
		verb string
		m    []string
		loc  = changeByRe.FindStringSubmatchIndex(low)
	)
	if f := fractionRe.FindStringSubmatchIndex(low); f != nil && (loc == nil || f[0] < loc[0]) {
		return changeByFraction(low, f)
	}
	if loc != nil {
		m = submatches(low, loc)
		verb, m = m[1], append([]string{m[0]}, m[2:]...)
	} else if loc = relativeRe.FindStringSubmatchIndex(low); loc != nil {
		m = submatches(low, loc)
		switch verb = "decreases"; m[6] {
		case "higher", "more", "up", "dearer", "greater", "bigger":
			verb = "increases"
		}
	} else {
		return monitor.Spec{}, false, nil
	}
	a, err := parseAmount(m)
	if err != nil {
		return monitor.Spec{}, false, parseError(fmt.Sprintf("Could not read the amount %q: %v.", strings.TrimSpace(m[0]), err))
	}
	if a.value < 0 {
		a.value = -a.value
	}
	operator := changeOperator(verb)
	window, baseline, err := parseWindow(low[loc[1]:])
	if err != nil {
		return monitor.Spec{}, false, err
	}
	measure := "absolute"
	if a.percent {
		measure = "percent"
	}
	name, typ, conf, warning := factFor(low[:loc[0]], low, a.unit)
	if typ != monitor.FactNumber {
		name, typ = name+"_value", monitor.FactNumber
	}
	unit := a.unit
	if a.percent {
		unit = ""
	}
	rule := &monitor.ChangeRule{Fact: name, Measure: measure, Operator: operator, Threshold: a.value, Window: window, Baseline: baseline}
	summary := fmt.Sprintf("%s %s by %s", name, operator, amountWords(a))
	if window != "" {
		summary += " " + baseline + " " + window
	}
	spec := monitor.Spec{
		Kind:        monitor.KindHistoricalChange,
		Summary:     summary,
		Facts:       []monitor.FactSpec{numberFact(name, unit)},
		Change:      rule,
		NeedsSource: true,
		Confidence:  conf,
	}
	if warning != "" {
		spec.Warnings = []string{warning}
	}
	return spec, true, nil
}

// changeByFraction reads "doubles", "triples", "halves" and "drops by half" / "by a
// quarter" as a percent change; loc is fractionRe's match.
func changeByFraction(low string, loc []int) (monitor.Spec, bool, error) {
	m := submatches(low, loc)
	var operator string
	var pct float64
	switch m[1] {
	case "doubles", "doubled", "double":
		operator, pct = "increases", 100
	case "triples", "tripled", "triple":
		operator, pct = "increases", 200
	case "quadruples", "quadruple":
		operator, pct = "increases", 300
	case "halves", "halved", "is cut in half", "is halved":
		operator, pct = "decreases", 50
	default:
		operator = changeOperator(m[2])
		switch m[3] {
		case "half", "a half":
			pct = 50
		case "a quarter":
			pct = 25
		case "a third":
			pct = 100.0 / 3
		case "three quarters":
			pct = 75
		}
	}
	window, baseline, err := parseWindow(low[loc[1]:])
	if err != nil {
		return monitor.Spec{}, false, err
	}
	name, typ, conf, warning := factFor(low[:loc[0]], low, "")
	if typ != monitor.FactNumber {
		name = name + "_value"
	}
	pct = math.Round(pct*100) / 100
	rule := &monitor.ChangeRule{Fact: name, Measure: "percent", Operator: operator, Threshold: pct, Window: window, Baseline: baseline}
	summary := fmt.Sprintf("%s %s by %s%%", name, operator, formatNumber(pct))
	if window != "" {
		summary += " " + baseline + " " + window
	}
	spec := monitor.Spec{Kind: monitor.KindHistoricalChange, Summary: summary, Facts: []monitor.FactSpec{numberFact(name, "")},
		Change: rule, NeedsSource: true, Confidence: conf}
	if warning != "" {
		spec.Warnings = []string{warning}
	}
	return spec, true, nil
}

// parseWindow reads an optional window after a change amount. It returns "" when there
// is none, and an error when a window word ("within", "in", "over"...) is followed by
// something that is not a duration.
func parseWindow(s string) (window, baseline string, err error) {
	m := windowIntroRe.FindStringSubmatch(s)
	if m == nil {
		return "", "", nil
	}
	intro, rest := m[1], strings.TrimSpace(m[2])
	if strings.HasPrefix(rest, "yesterday") {
		rest = "a day ago"
	}
	w := windowRe.FindStringSubmatch(rest)
	if w == nil || (w[1] == "" && len(w[2]) <= 2) {
		if intro == "in" && !strings.HasPrefix(rest, "the ") && !startsWithDigit(rest) && !strings.HasPrefix(rest, "a ") && !strings.HasPrefix(rest, "an ") {
			return "", "", nil // "rises by 5% in price": not a window
		}
		return "", "", parseError(fmt.Sprintf("Could not read the window %q after %q: use a duration such as \"24 hours\", \"24h\", \"a day\", \"a week\", \"30 days\" or \"12 hours\".", clip(rest, 40), intro))
	}
	n := 1.0
	switch w[1] {
	case "", "a", "an", "one":
	case "two":
		n = 2
	case "three":
		n = 3
	case "four":
		n = 4
	case "five":
		n = 5
	case "six":
		n = 6
	case "seven":
		n = 7
	case "eight":
		n = 8
	case "nine":
		n = 9
	case "ten":
		n = 10
	case "eleven":
		n = 11
	case "twelve":
		n = 12
	case "twenty-four":
		n = 24
	case "thirty":
		n = 30
	default:
		if _, err := fmt.Sscanf(w[1], "%g", &n); err != nil {
			return "", "", parseError(fmt.Sprintf("Could not read the number %q in the window.", w[1]))
		}
	}
	var unit time.Duration
	switch strings.TrimSuffix(w[2], "s") {
	case "minute", "min", "m":
		unit = time.Minute
	case "hour", "hr", "h":
		unit = time.Hour
	case "day", "d":
		unit = 24 * time.Hour
	case "week", "wk", "w":
		unit = 7 * 24 * time.Hour
	case "year", "yr", "y":
		unit = 365 * 24 * time.Hour
	default: // month, mo
		unit = 30 * 24 * time.Hour
	}
	const maxWindow = 5 * 366 * 24 * time.Hour
	d := time.Duration(n * float64(unit))
	if n <= 0 || n*float64(unit) > float64(maxWindow) || d < time.Minute {
		return "", "", parseError(fmt.Sprintf("The window %q must be between a minute and five years.", strings.TrimSpace(w[0])))
	}
	baseline = monitor.BaselineWithin
	switch intro {
	case "over", "since", "from", "compared with", "compared to", "than", "vs", "vs.", "versus":
		baseline = monitor.BaselineSince
	}
	if w[3] != "" { // "30 days ago"
		baseline = monitor.BaselineSince
	}
	return formatWindow(d), baseline, nil
}

// formatWindow writes d as a short Go duration: "24h", "30m", "1h30m".
func formatWindow(d time.Duration) string {
	d = d.Round(time.Minute)
	h, m := d/time.Hour, (d%time.Hour)/time.Minute
	switch {
	case m == 0:
		return fmt.Sprintf("%dh", h)
	case h == 0:
		return fmt.Sprintf("%dm", m)
	default:
		return fmt.Sprintf("%dh%dm", h, m)
	}
}

func classifyComparison(_, low string) (monitor.Spec, bool, error) {
	var (
		op      string
		a       amount
		subject string
	)
	if loc := orMoreRe.FindStringSubmatchIndex(low); loc != nil {
		m := submatches(low, loc)
		v, err := parseAmount(m)
		if err != nil {
			return monitor.Spec{}, false, parseError(fmt.Sprintf("Could not read the number in %q: %v.", strings.TrimSpace(m[0]), err))
		}
		a, subject = v, low[:loc[0]]
		op = ">="
		switch m[6] {
		case "less", "fewer", "lower", "below":
			op = "<="
		}
		subject = strings.TrimSuffix(strings.TrimSpace(subject), " is")
	} else if loc := firstComparison(low); loc != nil {
		m := submatches(low, loc)
		v, err := parseAmount(append([]string{m[0]}, m[3:]...))
		if err != nil {
			return monitor.Spec{}, false, parseError(fmt.Sprintf("Could not read the number in %q: %v.", strings.TrimSpace(m[0]), err))
		}
		a, subject = v, low[:loc[0]]
		op = comparisonOperator(m[1] + m[2])
		if negated(subject) { // "is not above 60", "is no longer below 40"
			op = negateOperator(op)
			subject = negationRe.ReplaceAllString(subject, "")
		}
	} else {
		return monitor.Spec{}, false, nil
	}
	name, typ, conf, warning := factFor(subject, low, a.unit)
	if typ != monitor.FactNumber {
		name = name + "_value"
	}
	unit := a.unit
	if name == "temperature" && unit == "" && strings.Contains(low, "fahrenheit") {
		unit = "°F"
	}
	spec := monitor.Spec{
		Kind:        monitor.KindCurrentState,
		Summary:     fmt.Sprintf("%s %s %s", name, operatorWords(op), amountWords(a)),
		Facts:       []monitor.FactSpec{numberFact(name, unit)},
		Condition:   fmt.Sprintf("%s %s %s", name, op, celNumber(a.value, op)),
		NeedsSource: true,
		Confidence:  conf,
	}
	if warning != "" {
		spec.Warnings = []string{warning}
	}
	return spec, true, nil
}

// firstComparison returns the first comparison whose number is not a window ("changes
// over 24 hours") or glued to letters ("1e9", "5x").
func firstComparison(low string) []int {
	for _, loc := range comparisonRe.FindAllStringSubmatchIndex(low, -1) {
		end := loc[1]
		if timeUnitRe.MatchString(low[end:]) || end < len(low) && (isLetter(low[end]) || low[end] >= '0' && low[end] <= '9') {
			continue
		}
		return loc
	}
	return nil
}

// negationRe matches a negation right before an operator: "not above", "no longer below".
var negationRe = regexp.MustCompile(`\b(?:not|no longer|never|isn['’]t|aren['’]t)\s*$`)

func negated(before string) bool { return negationRe.MatchString(before) }

// negateOperator is the operator of "not <op>".
func negateOperator(op string) string {
	switch op {
	case "<":
		return ">="
	case "<=":
		return ">"
	case ">":
		return "<="
	case ">=":
		return "<"
	case "==":
		return "!="
	}
	return "=="
}

func comparisonOperator(phrase string) string {
	switch phrase {
	case "<", "<=", ">", ">=", "!=":
		return phrase
	case "less than or equal to", "lower than or equal to", "fewer than or equal to", "at or below", "at or under":
		return "<="
	case "greater than or equal to", "more than or equal to", "higher than or equal to", "at or above":
		return ">="
	case "colder than", "cooler than":
		return "<"
	case "=", "==", "is", "is exactly", "is equal to", "equals", "equal to", "equal":
		return "=="
	case "is not", "isn't", "isn’t", "does not equal", "doesn't equal", "doesn’t equal":
		return "!="
	case "at most", "no more than", "not more than", "drops to", "falls to", "goes down to":
		return "<="
	case "at least", "no less than", "not less than", "rises to", "goes up to", "climbs to", "reaches", "reach", "hits", "hit":
		return ">="
	case "drops below", "falls below", "goes below", "go below", "dips below", "gets below", "sinks below", "is below", "below", "under",
		"less than", "lower than", "cheaper than", "fewer than", "smaller than":
		return "<"
	}
	return ">"
}

func operatorWords(op string) string {
	switch op {
	case "<":
		return "below"
	case "<=":
		return "at most"
	case ">":
		return "above"
	case ">=":
		return "at least"
	case "!=":
		return "not equal to"
	}
	return "equal to"
}

func amountWords(a amount) string {
	s := formatNumber(a.value)
	switch a.unit {
	case "":
		return s
	case "%", "°C", "°F":
		return s + a.unit
	}
	return s + " " + a.unit
}

func classifyAnyChange(_, low string) (monitor.Spec, bool, error) {
	loc := anyChangeRe.FindStringSubmatchIndex(low)
	if loc == nil {
		return monitor.Spec{}, false, nil
	}
	subject := low[:loc[0]]
	if loc[2] >= 0 { // "any change in X"
		subject = strings.TrimRight(low[loc[2]:loc[3]], ".!?; ")
	}
	name, typ, conf, warning := factFor(subject, "", "")
	if warning != "" { // an unknown noun: compare its text, which works for any value
		typ = monitor.FactText
	}
	if name == factValue { // "when anything changes": the page's text
		name, typ, warning = "page", monitor.FactText, ""
		conf = 0.8
	}
	fs := monitor.FactSpec{Name: name, Type: typ, Description: "the " + strings.ReplaceAll(name, "_", " ") + " on the source"}
	if typ == monitor.FactText && name == "page" {
		fs.Description = "the visible text of the page"
	}
	spec := monitor.Spec{
		Kind:        monitor.KindHistoricalChange,
		Summary:     strings.ReplaceAll(name, "_", " ") + " changes",
		Facts:       []monitor.FactSpec{fs},
		Change:      &monitor.ChangeRule{Fact: name, Measure: "any", Operator: "changes"},
		NeedsSource: true,
		Confidence:  conf,
	}
	if warning != "" {
		spec.Warnings = []string{warning}
	}
	return spec, true, nil
}

const (
	factValue   = "value"
	factInStock = "in_stock"
	// selectorText prefixes a FactSpec.Selector that is text to look for, not CSS.
	selectorText = "text:"
)

func numberFact(name, unit string) monitor.FactSpec {
	return monitor.FactSpec{Name: name, Type: monitor.FactNumber, Unit: unit, Description: "the " + strings.ReplaceAll(name, "_", " ") + " on the source"}
}

// factFor names the fact a prompt talks about: the last known noun in the subject (the
// head of "the bitcoin price" is "price"), else a known noun anywhere in the prompt, else
// the subject's last word, else what the unit suggests, else "value". Confidence drops
// and a warning is added when the name is a guess.
func factFor(subject, whole, unit string) (name string, typ monitor.FactType, confidence float64, warning string) {
	words := wordRe.FindAllString(subject, -1)
	for i := len(words) - 1; i >= 0; i-- {
		if n, t, ok := knownNoun(words[i]); ok {
			return n, t, 1, ""
		}
	}
	for _, w := range wordRe.FindAllString(whole, -1) {
		if n, t, ok := knownNoun(w); ok {
			return n, t, 0.9, ""
		}
	}
	for i := len(words) - 1; i >= 0; i-- {
		if !fillerWord(words[i]) {
			n := safeIdent(slugify(words[i], 40))
			return n, monitor.FactNumber, 0.8, fmt.Sprintf("Assumed the fact is named %q.", n)
		}
	}
	switch unit {
	case "USD", "EUR", "GBP":
		return "price", monitor.FactNumber, 0.9, ""
	case "°C", "°F":
		return "temperature", monitor.FactNumber, 0.9, ""
	}
	return factValue, monitor.FactNumber, 0.6, "The prompt does not say what to watch; assumed a number named \"value\"."
}

// knownNoun maps words to fact names and types.
func knownNoun(w string) (string, monitor.FactType, bool) {
	switch w {
	case "price", "prices", "cost", "costs", "priced", "fare", "fares", "bitcoin", "btc", "ethereum", "eth", "solana", "sol",
		"gold", "silver", "oil", "shares", "share":
		return "price", monitor.FactNumber, true
	case "temperature", "temperatures", "temp", "degrees":
		return "temperature", monitor.FactNumber, true
	case "stock", "inventory":
		return "stock", monitor.FactNumber, true
	case "count", "number", "quantity", "qty":
		return "count", monitor.FactNumber, true
	case "rate", "rates":
		return "rate", monitor.FactNumber, true
	case "score", "scores":
		return "score", monitor.FactNumber, true
	case "rating", "ratings":
		return "rating", monitor.FactNumber, true
	case "humidity", "volume", "followers", "subscribers", "views", "downloads", "stars", "likes", "balance",
		"speed", "latency", "uptime", "votes", "level", "total", "amount", "yield", "visitors", "users", "population",
		"percentage", "members", "points", "code", "wind", "rainfall", "pressure", "size", "weight", "distance", "duration":
		return w, monitor.FactNumber, true
	case "status", "title", "headline", "text", "content", "version", "message", "description", "heading", "state", "name":
		return w, monitor.FactText, true
	case "page", "site", "website", "webpage":
		return "page", monitor.FactText, true
	case "value":
		return factValue, monitor.FactNumber, true
	}
	return "", "", false
}

// fillerWord reports words that never name a fact.
func fillerWord(w string) bool {
	switch w {
	case "the", "a", "an", "my", "our", "your", "its", "it", "this", "that", "these", "those", "there", "is", "are",
		"was", "be", "been", "gets", "get", "goes", "go", "becomes", "become", "stays", "when", "whenever", "if",
		"once", "as", "soon", "tell", "me", "us", "alert", "notify", "let", "know", "please", "ping", "email", "send",
		"warn", "and", "or", "of", "on", "at", "in", "to", "for", "by", "with", "any", "anything", "something",
		"current", "currently", "trades", "trading", "sells", "reads", "shows", "hits", "stands", "sits", "now",
		"again", "still", "ever", "i", "want", "would", "like", "watch", "monitor", "check", "remind", "about",
		"has", "have", "holds", "hold", "not", "no", "longer":
		return true
	}
	return false
}

// slugify keeps ASCII letters and digits, joins the rest with single underscores, and
// cuts the result to at most n bytes; it starts with a letter or is empty.
func slugify(s string, n int) string {
	var b strings.Builder
	under := false
	for _, r := range asciiLower(s) {
		switch {
		case r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
			if under && b.Len() > 0 {
				b.WriteByte('_')
			}
			under = false
			if b.Len() == 0 && r >= '0' && r <= '9' {
				b.WriteString("n")
			}
			b.WriteRune(r)
		default:
			under = true
		}
	}
	out := b.String()
	if len(out) > n {
		out = strings.TrimRight(out[:n], "_")
	}
	return out
}

// safeIdent avoids CEL reserved words and type names as fact names.
func safeIdent(name string) string {
	switch name {
	case "", "true", "false", "null", "in", "as", "break", "const", "continue", "else", "for", "function", "if",
		"import", "let", "loop", "package", "namespace", "return", "var", "void", "while",
		"int", "uint", "double", "bool", "string", "bytes", "list", "map", "type", "dyn", "null_type", "has", "size":
		return name + "_value"
	}
	return name
}

// asciiLower lower-cases ASCII letters only, so byte offsets do not move.
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

func submatches(s string, loc []int) []string {
	out := make([]string, len(loc)/2)
	for i := range out {
		if loc[2*i] >= 0 {
			out[i] = s[loc[2*i]:loc[2*i+1]]
		}
	}
	return out
}

func startsWithDigit(s string) bool { return s != "" && s[0] >= '0' && s[0] <= '9' }

// clip shortens s to n runes for messages.
func clip(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n]) + "…"
	}
	return s
}
