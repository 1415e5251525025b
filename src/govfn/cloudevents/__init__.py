"""The CloudEvents codec, with no I/O: `decode` turns an HTTP request's headers and body into
events (binary, structured and batch modes, validated strictly), reading JSON as I-JSON
(`ijson`); `encode` turns a result into a reply event and its headers."""
