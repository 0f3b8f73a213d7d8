import sys
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.files import File
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from wagtail_clientdb import scope, stored_text
from wagtail_clientdb.imports import columns, runner
from wagtail_clientdb.imports.reading import CSV, XLS, XLSX, FileProblem
from wagtail_clientdb.models import Branch, ImportJob, JobStatus


class Command(BaseCommand):
    help = (
        "Import a customer list (CSV, XLSX, XLS) with the same rules as the admin. By default as the "
        "head office: new customers are global. With --branch, as that branch: new customers are local."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)
        parser.add_argument("--user", help="Import as this user (default: the first superuser).")
        parser.add_argument("--branch", help="Import as this branch (slug): customers are local to it.")
        parser.add_argument("--all-branches", action="store_true", help="Share new global customers with all branches.")
        parser.add_argument("--share-with", nargs="*", default=[], metavar="SLUG", help="Share new global customers with these branches.")
        parser.add_argument("--dry-run", action="store_true", help="Check the file and report; write nothing.")
        parser.add_argument("--valid-rows-only", action="store_true", help="Import the valid rows and report the rest (default: all or nothing).")
        parser.add_argument("--format", choices=[CSV, XLSX, XLS], help="Refuse the file unless it is of this format.")
        parser.add_argument("--encoding", default="", help="CSV encoding (default: detected).")
        parser.add_argument("--delimiter", default="", help="CSV delimiter (default: detected).")
        parser.add_argument("--map", action="append", default=[], metavar="HEADER=FIELD", help="Map a column, e.g. --map Kundennr=external_id or --map Haar=attr:hair_type.")

    def handle(self, *args, **options):
        if not options["file"].is_file():
            raise CommandError(f"No such file: {options['file']}")
        user = self._user(options["user"])
        branch = Branch.objects.filter(slug=options["branch"]).first() if options["branch"] else None
        if options["branch"] and branch is None:
            raise CommandError(f"No branch with the slug {options['branch']!r}.")
        branch = self._branch_of(user, branch)
        share_with = list(Branch.objects.filter(slug__in=options["share_with"]))
        unknown = set(options["share_with"]) - {b.slug for b in share_with}
        if unknown:
            raise CommandError(f"No branch with the slug {', '.join(sorted(unknown))}.")
        if branch is None and scope.is_branch_manager(user) and not options["dry_run"]:
            self._require_a_branch(options["all_branches"], share_with)
        job = ImportJob(
            created_by=user,
            branch=branch,
            original_name=options["file"].name,
            encoding=options["encoding"],
            delimiter=options["delimiter"],
            all_branches=options["all_branches"],
            share_branch_ids=[b.pk for b in share_with],
            import_valid_rows=options["valid_rows_only"],
        )
        with options["file"].open("rb") as handle:
            job.file.save(options["file"].name, File(handle), save=False)
        job.save()
        try:
            self._prepare(job, options)
            outcome = runner.run(job, dry_run=options["dry_run"], on_progress=self._progress)
        except FileProblem as problem:
            job.status, job.error = JobStatus.FAILED, str(problem)
            job.save()
            raise CommandError(str(problem))
        runner.finish(job, outcome, dry_run=options["dry_run"])
        self._report(job, options)

    def _require_a_branch(self, all_branches, share_with):
        """The head office's new customers are global: the same rule as the admin's import."""
        try:
            scope.require_a_branch(all_branches=all_branches, branches=share_with, count=2)
        except ValidationError as error:
            raise CommandError(f"{' '.join(error.messages)} (--all-branches or --share-with SLUG …)")

    def _user(self, username):
        User = get_user_model()
        user = User.objects.filter(username=username).first() if username else User.objects.filter(is_superuser=True).order_by("pk").first()
        if user is None:
            raise CommandError("No such user; pass --user.")
        return user

    def _branch_of(self, user, branch):
        """The branch the import acts in: the one given, or the only one of a branch staff member."""
        if scope.is_branch_manager(user):
            return branch
        branches = list(scope.member_branches(user))
        if branch is not None:
            if branch not in branches:
                raise CommandError(f"{user.get_username()} does not work in the branch {branch.slug!r}.")
            return branch
        if not branches:
            raise CommandError(f"{user.get_username()} is not a member of any branch and cannot import customers.")
        if len(branches) > 1:
            slugs = ", ".join(b.slug for b in branches)
            raise CommandError(f"{user.get_username()} works in several branches ({slugs}): choose one with --branch.")
        return branches[0]

    def _prepare(self, job, options):
        runner.inspect_upload(job)
        if options["format"] and job.format != options["format"]:
            raise FileProblem(f"The file is {job.format.upper()}, not {options['format'].upper()}.")
        choices = dict(columns.target_choices())
        for mapping in options["map"]:
            header, _sep, target = mapping.partition("=")
            if target not in choices:
                raise CommandError(f"Unknown field {target!r}. Known: {', '.join(t for t in choices if t)}")
            if header not in job.headers:
                raise CommandError(f"No column {header!r} in the file. Columns: {', '.join(job.headers)}")
            job.targets[job.headers.index(header)] = target
        if job.other_sheets:
            # As the admin's pages say: a list on another sheet is not read.
            others = ", ".join(repr(name) for name in job.other_sheets)
            self.stderr.write(f"Reading the sheet {job.sheet_name!r}; the workbook's other sheets ({others}) are not read.")
        problems = columns.mapping_problems(job.targets, job.headers)
        if problems:
            raise CommandError(" ".join(problems))
        for header, target in zip(job.headers, job.targets):
            if not target and not columns.is_export_only(header):
                self.stderr.write(f"Column {header!r} is ignored (use --map to import it).")
        job.save()

    def _progress(self, rows):
        if sys.stderr.isatty():
            sys.stderr.write(f"\r{rows:,} rows")
            sys.stderr.flush()

    def _report(self, job, options):
        if sys.stderr.isatty():
            sys.stderr.write("\n")
        for note in job.notes:
            self.stdout.write(stored_text.show(note))
        counts = job.counts
        prefix = "Dry run, nothing written: " if options["dry_run"] else ""
        self.stdout.write(
            f"{prefix}{counts['new']} new, {counts['updated']} updated, {counts['unchanged']} unchanged, "
            f"{counts['invalid']} refused."
        )
        for row in map(runner.shown_refused_row, job.invalid_rows):
            self.stdout.write(f"  line {row['line']}, {row['column']}: {row['message']}")
        if job.status == JobStatus.REFUSED:
            raise CommandError("Nothing was imported: some rows were refused (use --valid-rows-only to import the others).")
