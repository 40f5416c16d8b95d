// Package fallback is the rule-based AI provider: no network, no cost, deterministic. It
// ends every provider chain, so it must always answer something sensible or say exactly
// what it did not understand.
//
// # Prompt grammar
//
// Classify looks for the first of these forms, in this order, in the lower-cased prompt.
// Lead-ins such as "Tell me when", "Alert me if" or "Let me know when" are ignored.
//
// Contains (current_state, a boolean fact contains_<slug of the text>, selector
// "text:<text>"). The text is quoted ("…", '…', “…”, ‘…’) or runs to the end of the prompt.
// "says", "shows" and "displays" need a quote, so "the counter shows 100" stays a number.
//
//	the page mentions "pre-order"                    contains_pre_order == true
//	the page contains Tickets on sale.               contains_tickets_on_sale == true
//	the page no longer contains "Sold out"           contains_sold_out == false
//	the site doesn't mention ‘maintenance’           contains_maintenance == false
//	the banner says anything other than 'Coming soon' contains_coming_soon == false
//
// Negations: no longer contains/mentions/says/shows, does not (doesn't) contain/mention/
// say/show/include, stops mentioning/saying, anything (something) other than.
//
// Quoted text that appears or goes (current_state, the same contains fact):
//
//	"Registration open" appears / shows up / is back       contains_registration_open == true
//	'Sold out' disappears / is gone / goes away / is removed / no longer appears /
//	is no longer on the page                               contains_sold_out == false
//
// Stock (current_state, boolean fact in_stock):
//
//	it is back in stock / in stock / restocked / available again    in_stock == true
//	it is sold out / out of stock / no longer available             in_stock == false
//
// Change by an amount (historical_change). A verb, an optional "by", an optional "more
// than"/"at least"/"about", an amount, and an optional window. "%" or "percent" makes the
// measure percent, otherwise absolute. "within", "in" and "during" read the window as
// within (a move at any point inside it counts); "over", "since", "compared with/to" and
// "… ago" compare with the value one window ago. Without a window the previous observation
// is the baseline.
//
//	bitcoin rises 5% within 24 hours             price increases percent 5, window 24h within
//	the price jumps by 8% in 12 hours            price increases percent 8, window 12h within
//	the price drops by $10 in a day              price decreases absolute 10 USD, window 24h
//	followers increase by 1.5k over a week       followers increases absolute 1500, 168h since
//	the price decreases by 10 percent compared with 30 days ago     percent 10, 720h since
//	the score changes by more than 3% within the last 30 minutes    changes percent 3, 30m
//	the price is 5% higher than a week ago       price increases percent 5, 168h since
//
// Verbs: increases, rises, goes up, jumps, climbs, grows, gains, is up (increases);
// decreases, drops, falls, declines, sinks, dips, loses, goes down, is down (decreases);
// changes, moves, shifts, swings (changes). Windows: a number or a/an/one…twelve/
// twenty-four/thirty, then minutes (min, m), hours (hr, h), days (d), weeks (wk, w) or
// months (mo, 30 days), optionally after "the last"/"the past"; "24h" and "yesterday" work.
//
// Fractions: doubles (+100%), triples (+200%), quadruples (+300%), halves / is cut in half
// (-50%), and any verb "by half", "by a quarter", "by a third", "by three quarters", as a
// percent change with the same windows. More verbs: spikes, soars, surges, rallies,
// rockets (increases); plunges, plummets, crashes, tanks, slumps, tumbles (decreases).
// Windows may also be written "per day", "a day", "from last month" (since), and in years.
//
// Comparison (current_state, a number fact, the condition in CEL). Operators:
//
//	<   below, under, less than, lower than, cheaper than, fewer than, drops/falls/goes/dips below
//	<=  at most, no more than, drops to, falls to, "N or less"
//	>   above, over, more than, greater than, higher than, exceeds, rises/goes/climbs above
//	>=  at least, no less than, reaches, hits, rises to, "N or more"
//	==  equals, is, is exactly, is equal to, =, ==   (written with a double: price == 80.0)
//	!=  is not, does not equal, !=
//	and the symbols <, <=, >, >=
//	<=  also: less than or equal to, at or below;  >= also: greater than or equal to, at or above
//	<   also: colder than;  > also: warmer than, hotter than, passes, surpasses, tops
//
// A negation before the operator turns it: "is not above 60" is price <= 60, "is no longer
// below 40" is price >= 40.
//
// Two conditions joined by "and", "but" or "or" are read as one condition over both facts
// when each side reads on its own: "the price is below $80 and it is in stock" is
// price < 80 && in_stock == true; "above 100 or below 50" keeps the first side's fact.
// A change rule joined to anything is refused: a monitor follows one change.
//
// Numbers: currency before or after ($ € £, USD, EUR, GBP, dollars, euros, pounds),
// thousands separators (1,200 and 1 200), decimals, k/M suffixes (3k, 1.5M), thousand/
// million/billion, percent (%, percent), degrees (°C, °F, degrees, celsius, fahrenheit),
// ms and seconds. A number followed by a time unit ("over 24 hours") is a window, not a
// threshold.
//
//	the price drops below $80                    price < 80          (unit USD)
//	it costs less than £15.50                    price < 15.5        (unit GBP)
//	the price is under 1 200 EUR                 price < 1200        (unit EUR)
//	BTC goes over $100k                          price > 100000
//	the stock count is at least 3k               count >= 3000
//	the interest rate is at most 4.5%            rate <= 4.5         (unit %)
//	the rating equals 5                          rating == 5.0
//	there are 10 or more followers               followers >= 10
//
// Any change (historical_change, measure any, operator changes): "X changes", "any change
// in X", "X is updated". Text-like nouns (status, title, headline, version…) give a text
// fact; "the page changes" watches the page's visible text.
//
// # Fact names
//
// The fact is the last known noun before the operator (the head of "the bitcoin price" is
// "price"): price (also cost, costs, bitcoin, btc, ethereum, eth), temperature (temp,
// degrees), stock, count (number, quantity), rate, score, rating, humidity, volume,
// followers, views, latency and more; status, title, version and similar are text. Failing
// that, a known noun anywhere in the prompt, then the subject's last word (with a warning
// and confidence 0.8), then the unit (a currency means price, degrees temperature), then
// "value" (confidence 0.6). Names are sanitised to ^[a-z][a-z0-9_]*$ and never a CEL
// reserved word.
//
// # Prompts it rejects
//
// An empty prompt, a comparison word without a number ("drops below a lot"), a change verb
// without an amount ("the price increases"), an unreadable window ("within a fortnight"),
// "contains" without text, and prompts with none of the forms above get an EINVALID
// *domain.Error naming the part that failed, with Examples, and Fields{"prompt": problem}.
//
// # Extraction
//
// Extract reads each fact deterministically. FactSpec.Selector may be:
//
//	/a/0/b               a JSON pointer (RFC 6901)                     confidence 1
//	data.items[0].price  a dotted path in JSON ("$." prefix allowed)    confidence 1
//	re:<regexp>          a regexp on the raw body; first group or match confidence 1
//	css:<sel>, .price, #total, span.amount, h1 …
//	                     a CSS selector in HTML (goquery)              confidence 1
//	text:<phrase>        text to look for (boolean facts) or a keyword
//	a plain word         a keyword
//
// Without a selector: in JSON, the field named like the fact (then a synonym such as
// amount or cost for price, then a key containing the name), shallowest first, object keys
// in sorted order, confidence 0.9 (0.8 for synonyms); numeric strings such as "$1,075.50"
// parse. In HTML (scripts, styles and comments removed) and text, the number nearest the
// keyword (after it wins a tie), confidence 0.7. Booleans: in_stock from schema.org
// availability (JSON fields, JSON-LD, microdata; confidence 1), then out-of-stock wording,
// then in-stock wording and buy buttons (confidence 0.8); contains_* from the visible text,
// ignoring case and runs of white space. Evidence is the JSON pointer or path for JSON, and
// text quoted verbatim from the body for HTML and text, so it can be checked against the
// document; it is empty when nothing verbatim can be quoted (e.g. a phrase that is absent).
//
// # Evaluation
//
// Evaluate compiles the condition with CEL, each spec fact a variable of its type (number
// double, text string, boolean bool), with cross-type numeric comparisons, a size limit and
// a cost limit, and caches the program per condition and fact types. A missing fact gives
// state unknown; historical_change specs give unknown too, because Vigil compares stored
// facts itself.
package fallback
