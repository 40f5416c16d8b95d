package main

import "testing"

func TestBotAgentNamesItsContact(t *testing.T) {
	t.Parallel()
	if got := botAgent("https://vigil.example.com"); got != "VigilBot/1.0 (+https://vigil.example.com)" {
		t.Fatalf("botAgent = %q", got)
	}
	if got := botAgent(""); got == "" {
		t.Fatal("no User-Agent without a contact")
	}
}
