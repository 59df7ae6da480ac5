"""The timeline: activities, tasks, stage changes and field changes of a record, merged."""
