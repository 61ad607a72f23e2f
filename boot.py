# Runs before main.py on every reset. Kept empty of logic on purpose: a bug
# here would stop the REPL from coming up, and everything else lives in main.py.
