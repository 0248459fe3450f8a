"""The file specialist's tools: read, list, search, write, edit and delete inside the workspace.

Every open, create, rename and unlink goes through PathScope's descriptors (dir_fd calls with
O_NOFOLLOW), so no tool follows a symlink out of the workspace. Writes are atomic (temp file in
the same directory, fsync, rename), ask for approval with a diff, and are recorded in
ctx.file_changes so a run can be undone.

Files matching settings.tools.secret_paths (.env, keys, tokens) are never read back to the
model: read_file and edit_file refuse them and search_files skips them, so an agent that also
has a network tool cannot send them anywhere. list_files still shows their names.
"""

from tools.files.read import list_files, read_file, search_files
from tools.files.write import delete_file, edit_file, write_file

TOOLS = [read_file, list_files, search_files, write_file, edit_file, delete_file]
READ_ONLY_TOOLS = [read_file, list_files, search_files]
