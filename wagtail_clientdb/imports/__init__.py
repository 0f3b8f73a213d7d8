"""Import of customer lists from CSV, XLSX and XLS files.

* :mod:`.reading` opens a file safely and yields its rows, whatever the format;
* :mod:`.columns` recognises the columns (header names in English, German, French, or
  the plain A–E layout) and keeps mappings users corrected;
* :mod:`.rows` turns one row into checked customer values with the domain rules;
* :mod:`.resource` is the django-import-export resource that matches and saves customers;
* :mod:`.runner` previews and imports a whole file in chunks, with progress and a report.
"""
