"""The scanner simulation behind `just simulate`: people, their scanner, and the run.

people.py    who the simulated users are and how they set and change scans
timeline.py  the simulated calendar: experiment days, pre-experiment days, VIX, clocks
scanner.py   one user's sessions against the service, outcomes from train.market
runner.py    many users at once over HTTP, with progress, and their own tally
server.py    a private server (Granian via server.serve) on a free port and a fresh store
"""
