"""Built-in firebus plugins; each is an ordinary plugin loaded through entry points."""
