from authenticity.cli.app import run

run()
