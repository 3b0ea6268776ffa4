defmodule Shop.Umbrella.MixProject do
  use Mix.Project

  def project do
    [
      apps_path: "apps",
      version: "0.4.2",
      start_permanent: Mix.env() == :prod,
      deps: deps(),
      aliases: aliases(),
      releases: [
        shop: [
          applications: [shop: :permanent, shop_web: :permanent],
          include_executables_for: [:unix],
          steps: [:assemble, :tar]
        ]
      ]
    ]
  end

  defp deps do
    []
  end

  defp aliases do
    [setup: ["cmd mix setup"]]
  end
end
