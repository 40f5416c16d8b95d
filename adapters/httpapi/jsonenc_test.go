package httpapi

import (
	"bytes"
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/stretchr/testify/require"
)

// answerTypes are the structs the API answers with; TestAnswerTypesAreAllListed keeps the
// list whole.
var answerTypes = []any{
	ActionJSON{}, ActionConfigJSON{}, ActionListJSON{}, ActionTestJSON{}, ActionTestResultJSON{}, AllowlistEntryJSON{},
	AllowlistJSON{}, AdminAuditEventJSON{}, AdminAuditListJSON{}, APIKeyJSON{}, NewAPIKeyJSON{}, APIKeyListJSON{}, UserJSON{},
	BacktestJSON{}, FlipJSON{}, TriggerBacktestJSON{}, ActualJSON{}, SuppressionJSON{}, SuppressionListJSON{}, AuditEventJSON{},
	AuditListJSON{}, MonitorJSON{}, ClassifiedByJSON{}, MonitorCreatedJSON{}, MonitorDetailJSON{}, EvaluationJSON{}, MissJSON{},
	FactJSON{}, MonitorListJSON{}, HistoryJSON{}, ValidationJSON{}, VerdictJSON{}, NotificationJSON{}, AttemptJSON{},
	NotificationListJSON{}, OverviewJSON{}, OverviewMonitorsJSON{}, OverviewDayJSON{}, NoisyMonitorJSON{}, SeriesAnswerJSON{},
	SeriesJSON{}, PointJSON{}, LatestFactsJSON{}, MonitorStatsJSON{}, EvaluationTotalJSON{}, PercentilesJSON{}, AIUsageJSON{},
	ReuseJSON{}, SegmentJSON{}, StatsBucketJSON{}, TriggerJSON{}, TriggerListJSON{},
}

// TestAnswerTypesAreAllListed: every XxxJSON struct of the package is in answerTypes, so a
// new answer is checked by TestAnswersEncodeAsEncodingJSONDoes.
func TestAnswerTypesAreAllListed(t *testing.T) {
	listed := map[string]bool{}
	for _, v := range answerTypes {
		listed[reflect.TypeOf(v).Name()] = true
	}
	entries, err := os.ReadDir(".")
	require.NoError(t, err)
	fset := token.NewFileSet()
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, e.Name(), nil, 0)
		require.NoError(t, err)
		ast.Inspect(f, func(n ast.Node) bool {
			if ts, ok := n.(*ast.TypeSpec); ok {
				if _, isStruct := ts.Type.(*ast.StructType); isStruct && strings.HasSuffix(ts.Name.Name, "JSON") {
					require.True(t, listed[ts.Name.Name], "%s (%s) is not in answerTypes", ts.Name.Name, e.Name())
				}
			}
			return true
		})
	}
}

// TestAnswersEncodeAsEncodingJSONDoes: the answers' serializer writes exactly the bytes
// encoding/json writes, for every answer type filled with random values: text with HTML
// characters, line separators and invalid UTF-8, extreme numbers, times in other zones,
// nil and empty slices, maps and pointers.
func TestAnswersEncodeAsEncodingJSONDoes(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	e := echo.New()
	for _, v := range answerTypes {
		typ := reflect.TypeOf(v)
		for i := range 300 {
			val := reflect.New(typ)
			fill(rng, val.Elem(), 0)
			for _, indent := range []string{"", "  "} { // ?pretty asks for the indented form
				var want bytes.Buffer
				enc := json.NewEncoder(&want)
				enc.SetIndent("", indent)
				require.NoError(t, enc.Encode(val.Interface()))
				rec := httptest.NewRecorder()
				c := e.NewContext(httptest.NewRequest(http.MethodGet, "/", nil), rec)
				require.NoError(t, jsonSerializer{}.Serialize(c, val.Interface(), indent))
				require.Equal(t, want.String(), rec.Body.String(), "%s, value %d, indent %q", typ.Name(), i, indent)
			}
		}
	}
}

// fill sets v to a random value of its type.
func fill(rng *rand.Rand, v reflect.Value, depth int) {
	if depth > 6 {
		return
	}
	if v.Type() == reflect.TypeFor[time.Time]() {
		zones := []*time.Location{time.UTC, time.FixedZone("", -7*3600-30*60), time.FixedZone("CET", 3600)}
		v.Set(reflect.ValueOf(time.Unix(rng.Int64N(4e9), rng.Int64N(1e9)*int64(rng.IntN(2))).In(zones[rng.IntN(len(zones))])))
		return
	}
	if v.Type() == reflect.TypeFor[json.RawMessage]() {
		raws := []string{`{"css":"div > .price"}`, `null`, `[1,2.5,"x"]`, `"<a&b>"`}
		v.SetBytes([]byte(raws[rng.IntN(len(raws))]))
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(randomText(rng))
	case reflect.Bool:
		v.SetBool(rng.IntN(2) == 1)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(int64(rng.Uint64()) >> (64 - v.Type().Bits())) // #nosec G115 -- any bits will do
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(rng.Uint64() >> (64 - uint(v.Type().Bits())))
	case reflect.Float32, reflect.Float64:
		floats := []float64{0, math.Copysign(0, -1), 0.1, 1e21, 1e-7, 123456789.125, math.MaxFloat32, -2.5e-300}
		f := floats[rng.IntN(len(floats))]
		if rng.IntN(2) == 0 {
			f = rng.NormFloat64() * math.Pow(10, float64(rng.IntN(30)-15))
		}
		if v.Kind() == reflect.Float32 {
			f = float64(float32(f))
		}
		v.SetFloat(f)
	case reflect.Pointer:
		if rng.IntN(3) > 0 {
			p := reflect.New(v.Type().Elem())
			fill(rng, p.Elem(), depth+1)
			v.Set(p)
		}
	case reflect.Slice:
		switch rng.IntN(4) {
		case 0: // nil
		case 1:
			v.Set(reflect.MakeSlice(v.Type(), 0, 0))
		default:
			n := 1 + rng.IntN(3)
			s := reflect.MakeSlice(v.Type(), n, n)
			for i := range n {
				fill(rng, s.Index(i), depth+1)
			}
			v.Set(s)
		}
	case reflect.Map:
		if rng.IntN(4) == 0 {
			return
		}
		m := reflect.MakeMap(v.Type())
		for range rng.IntN(4) {
			k := reflect.New(v.Type().Key()).Elem()
			fill(rng, k, depth+1)
			e := reflect.New(v.Type().Elem()).Elem()
			fill(rng, e, depth+1)
			m.SetMapIndex(k, e)
		}
		v.Set(m)
	case reflect.Interface:
		values := []any{nil, rng.NormFloat64() * 1000, randomText(rng), rng.IntN(2) == 1, []any{1.5, "x"}, map[string]any{"b": 1.0, "a": "<"}}
		if x := values[rng.IntN(len(values))]; x != nil {
			v.Set(reflect.ValueOf(x))
		}
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fill(rng, v.Field(i), depth+1)
			}
		}
	}
}

func randomText(rng *rand.Rand) string {
	parts := []string{"", "price", "<script>&", "\u2028\u2029", "naïve café", "\x00\x1f", "\xff\xfe", "\"quoted\"\\", "😀", "\t\n"}
	var b strings.Builder
	for range rng.IntN(4) {
		b.WriteString(parts[rng.IntN(len(parts))])
	}
	return b.String()
}
