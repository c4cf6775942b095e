"""``make bench``: intake measured against xmllint and pandas.read_xml on the same files."""
