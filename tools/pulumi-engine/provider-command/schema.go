package main

// schemaJSON is a deliberately minimal package schema: the engine does not need
// more for deployments, and the real SDK (@pulumi/command 1.2.1) is used as-is.
const schemaJSON = `{
  "name": "command",
  "version": "1.2.1",
  "resources": {
    "command:remote:Command": {
      "description": "A command to run on a remote host over SSH (stand-in provider).",
      "properties": {
        "stdout": {"type": "string"},
        "stderr": {"type": "string"}
      },
      "required": ["stdout", "stderr"],
      "inputProperties": {
        "connection": {"type": "object", "secret": true},
        "create": {"type": "string"},
        "update": {"type": "string"},
        "delete": {"type": "string"},
        "stdin": {"type": "string"},
        "environment": {"type": "object", "additionalProperties": {"type": "string"}},
        "triggers": {"type": "array", "items": {"$ref": "pulumi.json#/Any"}, "replaceOnChanges": true},
        "logging": {"type": "string"},
        "addPreviousOutputInEnv": {"type": "boolean"}
      },
      "requiredInputs": ["connection"]
    }
  }
}`
