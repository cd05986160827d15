package schemas

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"path"
	"strings"

	"go.yaml.in/yaml/v4"
)

//go:embed asyncapi.yaml
var asyncAPIDoc []byte

// AsyncAPI is what asyncapi.yaml says each topic carries: the schema files of the messages of
// the channel at that address. It is read-only after LoadAsyncAPI and safe for concurrent use.
type AsyncAPI struct {
	byTopic map[string]map[string]bool // topic → schema file (<Type>.v<N>.json) → true
}

// asyncAPIFile is the part of the document LoadAsyncAPI reads.
type asyncAPIFile struct {
	Channels map[string]struct {
		Address  string                       `yaml:"address"`
		Messages map[string]map[string]string `yaml:"messages"` // name → {$ref: '#/components/messages/<name>'}
	} `yaml:"channels"`
	Components struct {
		Messages map[string]struct {
			Payload struct {
				Schema map[string]string `yaml:"schema"` // {$ref: './<Type>.v<N>.json'}
			} `yaml:"payload"`
		} `yaml:"messages"`
	} `yaml:"components"`
}

// LoadAsyncAPI reads the embedded asyncapi.yaml: each channel's address and the payload schema
// file of each of its messages. (make test lints the document itself with the AsyncAPI parser.)
func LoadAsyncAPI() (*AsyncAPI, error) {
	var doc asyncAPIFile
	if err := yaml.Unmarshal(asyncAPIDoc, &doc); err != nil {
		return nil, fmt.Errorf("asyncapi.yaml: %w", err)
	}
	a := &AsyncAPI{byTopic: map[string]map[string]bool{}}
	for id, ch := range doc.Channels {
		if ch.Address == "" || len(ch.Messages) == 0 {
			return nil, fmt.Errorf("asyncapi.yaml: channel %s has no address or no messages", id)
		}
		files := map[string]bool{}
		for name, ref := range ch.Messages {
			msg, ok := doc.Components.Messages[strings.TrimPrefix(ref["$ref"], "#/components/messages/")]
			file := path.Base(msg.Payload.Schema["$ref"])
			if !ok || file == "." || file == "/" {
				return nil, fmt.Errorf("asyncapi.yaml: message %s of channel %s has no payload schema file", name, id)
			}
			files[file] = true
		}
		a.byTopic[ch.Address] = files
	}
	return a, nil
}

// Topics lists the topics the document describes.
func (a *AsyncAPI) Topics() []string {
	out := make([]string, 0, len(a.byTopic))
	for t := range a.byTopic {
		out = append(out, t)
	}
	return out
}

// SchemaFiles lists the schema files of the messages topic carries.
func (a *AsyncAPI) SchemaFiles(topic string) []string {
	var out []string
	for f := range a.byTopic[topic] {
		out = append(out, f)
	}
	return out
}

// Check says whether value, a record read from topic, is the message it claims to be: its
// eventType and eventVersion must name a message of the topic's channel, and the envelope must
// be valid for that message's schema (v).
func (a *AsyncAPI) Check(v *Validator, topic string, value []byte) error {
	var head struct {
		EventType    string `json:"eventType"`
		EventVersion int    `json:"eventVersion"`
	}
	if err := json.Unmarshal(value, &head); err != nil {
		return fmt.Errorf("a record on %s is not a JSON envelope: %w", topic, err)
	}
	file := fmt.Sprintf("%s.v%d.json", head.EventType, head.EventVersion)
	if !a.byTopic[topic][file] {
		return fmt.Errorf("a %s v%d record on %s: asyncapi.yaml has no such message on that channel", head.EventType, head.EventVersion, topic)
	}
	return v.Validate(head.EventType, head.EventVersion, value)
}
