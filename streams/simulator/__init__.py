"""The simulated sales floor: a seeded CRM stream (:mod:`streams.simulator.floor`, pure) and its
player to Kafka (:mod:`streams.simulator.run`, ``leadpulse simulate``).

May import ``streams.kafka.topics`` and ``streams.config``; never the engine.
"""
