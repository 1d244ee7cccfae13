/* empty.c: keeps the test-support library non-empty before any helper exists. */
typedef int dsv32_testsupport_empty;
