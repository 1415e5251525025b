"""Where a CID came from and what it led to: the graph (`graph`), its text, JSON and DOT forms
(`formats`), indexed lookups for serving (`lookup`), and OpenLineage RunEvents, exported
(`openlineage`) or sent live (`openlineage_sender`)."""
