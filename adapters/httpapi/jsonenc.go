package httpapi

import (
	gojson "github.com/goccy/go-json"
	"github.com/labstack/echo/v4"
)

// jsonSerializer writes answers with goccy/go-json, which encodes the API's structs
// (history pages of evaluations, above all) several times faster than encoding/json, and
// the same bytes. Request bodies are still read by Echo's encoding/json, whose errors the
// problem answers are built on.
type jsonSerializer struct{ echo.DefaultJSONSerializer }

func (jsonSerializer) Serialize(c echo.Context, i any, indent string) error {
	enc := gojson.NewEncoder(c.Response())
	if indent != "" {
		enc.SetIndent("", indent)
	}
	return enc.Encode(i)
}
