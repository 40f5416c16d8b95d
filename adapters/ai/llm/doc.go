// Package llm holds what the language-model providers (claude, openai) share: the system
// prompts, the layout of the user message, the JSON schemas of the three answers and their
// decoding and validation. Each provider only speaks its wire format.
package llm
